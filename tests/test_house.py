"""The package stays readable: no module over 450 lines (each reads in one sitting; a
module that grows past it is split by what its parts own, as run/, send/ and read/ were).
The layers between stages are import-linter's (`make lint`)."""

from __future__ import annotations

from pathlib import Path

LONGEST = 450
PACKAGE = Path(__file__).resolve().parent.parent / "bulktag"


def test_no_module_is_over_450_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE.parent)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > LONGEST
    }
    assert long == {}
