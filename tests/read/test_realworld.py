"""Real-world files, made by real programs, read as the person meant them.

Each ``tests/fixtures/realworld/NAME.EXT`` has a ``NAME.EXT.expected.json`` computed by that
folder's own reader (``expect.py``, which never imports bulktag) and checked by hand. Here the
real command runs in-process on the file (``bulktag run --dry-run``, CSV and NDJSON outputs) and
everything a person would check is compared: exit code, contacts and their tags in order,
reject rows by line and kind, counts, and the detected encoding.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bulktag.cli.commands import main

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "realworld"
EXPECTED = sorted(FIXTURES.glob("*.expected.json"))

#: A reject's reason text -> its kind, by the first substring found (case-insensitive).
REASON_KINDS: tuple[tuple[str, str], ...] = (
    ("null marker", "marker"),
    ("part of a list", "list_part"),
    ("ends inside a character", "cut"),
    ("missing contact id", "missing_id"),
    ("is a number", "number"),
    ("scientific notation", "number"),
    ("not a uuid", "not_uuid"),
    ("no tags", "no_tags"),
    ("longer than", "tag_too_long"),
    ("control characters", "tag_control"),
    ("more fields than the header", "ragged"),
)


def reason_kind(reason: str) -> str:
    """The kind of a reject reason, or the reason itself when no substring matches."""
    lowered = reason.casefold()
    for fragment, kind in REASON_KINDS:
        if fragment in lowered:
            return kind
    return reason


def _unescape(cell: str) -> str:
    """A results.csv cell without the one apostrophe bulktag's injection escaping adds."""
    return cell[1:] if cell.startswith("'") else cell


def _run(
    path: Path, out: Path, fmt: str, options: list[str], capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """``bulktag run PATH --dry-run --out OUT --format FMT OPTIONS``: (exit code, stderr)."""
    code = main(["run", str(path), "--dry-run", "--out", str(out), "--format", fmt, *options])
    _, err = capsys.readouterr()
    return code, err


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.strip()]


def _same_reading(path: Path, found: str | None, expected: str) -> bool:
    """The same encoding, or one that reads the file as the same text (KOI8-U for KOI8-R
    text: the detectors may name either)."""
    if _codec(found) == _codec(expected):
        return True
    if found is None:
        return False
    data = path.read_bytes()
    try:
        return data.decode(found) == data.decode(expected)
    except (UnicodeDecodeError, LookupError):
        return False


def _codec(name: str | None) -> str | None:
    """An encoding's canonical Python codec name (utf8 and UTF-8 are the same)."""
    if name is None:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return name


def _check_csv_results(out: Path, expected: dict[str, Any], problems: list[str]) -> None:
    """results.csv: the contacts in order; their tags joined with commas, a tag holding a
    separator (``,;|``) or a double quote at either end written in double quotes."""
    with (out / "results.csv").open(encoding="utf-8", newline="") as handle:
        rows = [(_unescape(r["contact_id"]), _unescape(r["tags"])) for r in csv.DictReader(handle)]
    want = [(contact, tags) for contact, tags in expected["contacts"]]
    if [r[0] for r in rows] != [w[0] for w in want]:
        problems.append(f"results.csv contacts {[r[0] for r in rows]} != {[w[0] for w in want]}")
        return
    for (contact, cell), (_, tags) in zip(rows, want, strict=True):
        joined = ",".join(_quoted(tag) for tag in tags)
        if cell != joined:
            problems.append(f"results.csv tags of {contact}: {cell!r} != {joined!r}")


def _quoted(tag: str) -> str:
    """A tag as README's "Output files" says a joined tags cell holds it."""
    if any(c in tag for c in ",;|") or tag.startswith('"') or tag.endswith('"'):
        return f'"{tag}"'
    return tag


def _check_ndjson_run(out: Path, expected: dict[str, Any], problems: list[str], path: Path) -> None:
    """results.ndjson, rejects.ndjson and summary.json against the expectation."""
    got = [(r["contact_id"], r["tags"]) for r in read_ndjson(out / "results.ndjson")]
    want = [(contact, tags) for contact, tags in expected["contacts"]]
    if got != want:
        problems.append(f"contacts/tags {got!r}\n    expected {want!r}")
    rejects = read_ndjson(out / "rejects.ndjson")
    got_rejects = Counter((r["line"], reason_kind(str(r["reason"]))) for r in rejects)
    want_rejects = Counter((r["line"], r["kind"]) for r in expected["rejects"])
    if got_rejects != want_rejects:
        reasons = sorted({(r["line"], r["reason"]) for r in rejects})
        problems.append(
            f"rejects (line, kind) {sorted(got_rejects.elements())}\n"
            f"    expected {sorted(want_rejects.elements())}\n    reasons {reasons}"
        )
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    plan = summary["plan"]
    if plan["rows_read"] != expected["rows_read"]:
        problems.append(f"rows_read {plan['rows_read']} != {expected['rows_read']}")
    if plan["rows_read"] != plan["rows_grouped"] + plan["rows_rejected"]:
        problems.append(
            f"not conserved: read {plan['rows_read']} != grouped {plan['rows_grouped']} "
            f"+ rejected {plan['rows_rejected']}"
        )
    if "encoding" in expected:
        found = plan["inputs"][0].get("encoding") if plan["inputs"] else None
        if not _same_reading(path, found, expected["encoding"]):
            problems.append(f"encoding {found!r} != {expected['encoding']!r}")


@pytest.mark.parametrize(
    "expected_path", EXPECTED, ids=lambda p: p.name.removesuffix(".expected.json")
)
def test_realworld_file(
    expected_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """bulktag reads this real-world file as its expected.json says a person meant it."""
    expected = json.loads(expected_path.read_text(encoding="utf-8"))
    path = FIXTURES / expected_path.name.removesuffix(".expected.json")
    options = list(expected["options"])
    problems: list[str] = []

    code, err = _run(path, tmp_path / "out", "csv", options, capsys)
    if code != expected["exit"]:
        problems.append(f"exit {code} != {expected['exit']} (stderr: {err.strip()[-600:]})")
    if expected["exit"] == 65:
        if path.name not in err:
            problems.append(f"stderr does not name {path.name}: {err.strip()[-600:]}")
        message = err.replace(str(path), "").replace(path.name, "")  # the name may hold "html"
        problems.extend(
            f"stderr lacks {fragment!r}: {err.strip()[-600:]}"
            for fragment in expected["error_contains"]
            if fragment.casefold() not in message.casefold()
        )
        assert not problems, "\n".join(problems)
        return
    if code in (0, 1):
        _check_csv_results(tmp_path / "out", expected, problems)

    csv_code = code
    code, err = _run(path, tmp_path / "out-ndjson", "ndjson", options, capsys)
    if code != csv_code:
        problems.append(f"--format ndjson exit {code} != --format csv exit {csv_code}")
    if code in (0, 1):
        _check_ndjson_run(tmp_path / "out-ndjson", expected, problems, path)
    assert not problems, f"{path.name} ({expected['exercises']}):\n  " + "\n  ".join(problems)


def test_the_corpus_is_complete() -> None:
    """Every corpus file has an expectation, every expectation a file, and the corpus is big."""
    inputs = {
        p.name
        for p in FIXTURES.iterdir()
        if p.is_file() and not p.name.endswith((".expected.json", ".py", ".md"))
    }
    described = {p.name.removesuffix(".expected.json") for p in EXPECTED}
    assert inputs == described
    assert len(inputs) >= 36
    assert all((FIXTURES / name).stat().st_size < 50_000 for name in inputs)
    programs = {json.loads(p.read_text(encoding="utf-8"))["program"] for p in EXPECTED}
    assert len(programs) >= 6
