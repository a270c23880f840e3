"""``python -m leadctx``: the same as the ``leadctx`` console script."""

from __future__ import annotations

import sys

from leadctx.cli import main

if __name__ == "__main__":
    sys.exit(main())
