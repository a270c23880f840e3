"""The wire format's pure parts: the bulk answer, its ETag and the cache of both."""

from __future__ import annotations

import hashlib
import json

from openfeature.flag_evaluation import FlagResolutionDetails, Reason

from leadctx.serve.ofrep import EncodedBulkAnswers, bulk_body, encode
from leadctx_flags.flags import SHARED_BUNDLE_FLAG

URI = "/ofrep/v1/events?since=4-0123456789abcdef"


def resolution(*, value: bool, version: str = "4") -> FlagResolutionDetails[bool]:
    return FlagResolutionDetails(
        value=value,
        reason=Reason.TARGETING_MATCH,
        variant="on" if value else "off",
        flag_metadata={"flagSetId": "leadctx", "version": version, "source": "allowlist"},
    )


def test_the_bulk_body_has_every_flag_the_set_metadata_and_the_stream() -> None:
    body = bulk_body([(SHARED_BUNDLE_FLAG, resolution(value=True))], URI)
    assert body["metadata"] == {"flagSetId": "leadctx", "version": "4"}
    assert body["eventStreams"] == [{"type": "sse", "endpoint": {"requestUri": URI}}]
    assert [flag["key"] for flag in body["flags"]] == [SHARED_BUNDLE_FLAG]


def test_the_etag_is_a_hash_of_the_encoded_answer() -> None:
    resolutions = [(SHARED_BUNDLE_FLAG, resolution(value=True))]
    etag, body = EncodedBulkAnswers().encoded(resolutions, URI)
    assert body == encode(bulk_body(resolutions, URI))
    assert etag == b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'


def test_a_cached_answer_is_never_another_resolutions_or_streams() -> None:
    answers = EncodedBulkAnswers(limit=2)
    on = answers.encoded([(SHARED_BUNDLE_FLAG, resolution(value=True))], URI)
    off = answers.encoded([(SHARED_BUNDLE_FLAG, resolution(value=False))], URI)
    newer = answers.encoded([(SHARED_BUNDLE_FLAG, resolution(value=True, version="5"))], URI)
    elsewhere = answers.encoded([(SHARED_BUNDLE_FLAG, resolution(value=True))], URI + "x")
    assert len({on[0], off[0], newer[0], elsewhere[0]}) == 4
    assert json.loads(off[1])["flags"][0]["value"] is False
    # and the same resolutions give the same bytes, from the cache or not
    assert answers.encoded([(SHARED_BUNDLE_FLAG, resolution(value=True))], URI) == on
