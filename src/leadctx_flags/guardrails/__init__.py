"""Rollout guardrails: records → statistics → expand | hold | rollback.

Needs the ``guardrails`` extra (and ``postgres`` for PostgreSQL); ``leadctx_flags`` never
imports this package, so the flag's users do not pay for it.
"""
