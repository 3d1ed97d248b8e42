"""``python -m bulktag`` is the ``bulktag`` command."""

from __future__ import annotations

from bulktag.cli.commands import main

if __name__ == "__main__":
    raise SystemExit(main())
