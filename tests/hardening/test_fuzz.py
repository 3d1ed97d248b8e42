"""1,200 malformed input files: never a traceback; exit 65 with a message, or rejects with lines.

The files come from a seeded generator (the same files every run): random bytes,
mixed encodings, stray quotes, ragged rows, NUL bytes, huge fields, duplicate
headers, empty and header-only files, broken Parquet, XLSX and NDJSON.
"""

from __future__ import annotations

import csv
import io
import random
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from bulktag.cli.commands import main

CASES = 1200
csv.field_size_limit(1 << 30)  # reject rows carry the huge raw cells too
GOOD_HEADERS = [
    "contact_id,tags",
    "Contact ID;Tags",
    "id\ttag",
    "uuid|labels",
    "contact_id,tag1,tag2",
]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _cell(rng: random.Random) -> str:
    choices: list[Callable[[], str]] = [
        lambda: _uuid(rng),
        lambda: _uuid(rng).upper(),
        lambda: "vip",
        lambda: "",
        lambda: '"',
        lambda: 'a"b',
        lambda: '"quoted, cell"',
        lambda: "x" * rng.choice([101, 5000, 200_000]),
        lambda: "\x00",
        lambda: "tab\tinside",
        lambda: "new\nline",
        lambda: "\r",
        lambda: "é ß 漢字 🙂",
        lambda: "1.23E+15",
        lambda: "=cmd|' /C calc'!A0",
        lambda: "\u200b",
        lambda: "\x1b[31mred",
        lambda: "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(1, 20))),
    ]
    return rng.choice(choices)()


def _text_file(rng: random.Random) -> bytes:
    delimiter = rng.choice([",", ";", "\t", "|"])
    if rng.random() < 0.7:  # a usable header in the file's own delimiter: rows get read
        header = delimiter.join(
            rng.choice([["contact_id", "tags"], ["Contact ID", "Tag 1", "Tag 2"]])
        )
    else:
        header = rng.choice([*GOOD_HEADERS, "a,a", "tags,tags,contact_id,contact_id", "", "\ufeff"])
    rows = [header]
    for _ in range(rng.randint(0, 30)):
        width = rng.randint(0, 6)
        rows.append(delimiter.join(_cell(rng) for _ in range(width)))
    newline = rng.choice(["\n", "\r\n", "\r", ""])
    text = newline.join(rows) + rng.choice(["", newline])
    encoding = rng.choice(["utf-8", "utf-8-sig", "cp1252", "utf-16", "latin-1", "mixed"])
    if encoding == "mixed":
        half = len(text) // 2
        return text[:half].encode("utf-8", "replace") + text[half:].encode("cp1252", "replace")
    return text.encode(encoding, "replace")


def _random_bytes(rng: random.Random) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 4000)))


def _damaged(rng: random.Random) -> bytes:
    data = bytearray(_text_file(rng))
    for _ in range(rng.randint(1, 10)):
        if data:
            data[rng.randrange(len(data))] = rng.getrandbits(8)
    return bytes(data)


def _zip(rng: random.Random) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("xl/workbook.xml", _random_bytes(rng))
    data = buffer.getvalue()
    return data[: rng.randint(0, len(data))]


def read_ndjson(rng: random.Random) -> bytes:
    lines = []
    for _ in range(rng.randint(0, 10)):
        lines.append(
            rng.choice(
                [
                    f'{{"contact_id": "{_uuid(rng)}", "tags": ["a", "b"]}}',
                    f'{{"contact_id": {rng.randint(0, 10**12)}, "tags": "x"}}',
                    '{"contact_id": null}',
                    "{broken",
                    "[]",
                    "",
                    '{"id": "x", "tags": [1, null, {"a": 1}]}',
                ]
            )
        )
    return "\n".join(lines).encode()


MAKERS: list[tuple[str, Callable[[random.Random], bytes]]] = [
    ("csv", _text_file),
    ("csv", _text_file),
    ("csv", _text_file),
    ("csv", _damaged),
    ("txt", _random_bytes),
    ("tsv", _text_file),
    ("parquet", _random_bytes),
    ("xlsx", _zip),
    ("xlsx", _random_bytes),
    ("ndjson", read_ndjson),
]


def test_malformed_inputs_never_raise(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Every generated file ends with exit 0, 1 or 65, one clear line or located rejects."""
    rng = random.Random(20261126)
    outcomes: Counter[int] = Counter()
    for case in range(CASES):
        extension, make = rng.choice(MAKERS)
        path = tmp_path / f"case{case:04d}.{extension}"
        path.write_bytes(make(rng))
        rejects = tmp_path / f"rejects{case:04d}.csv"
        try:
            code = main(["validate", str(path), "--rejects", str(rejects)])
        except BaseException as exc:  # noqa: BLE001  (the point: nothing may escape)
            pytest.fail(f"{path.name}: {type(exc).__name__}: {exc}")
        out, err = capsys.readouterr()
        outcomes[code] += 1
        assert "Traceback" not in out + err, path.name
        if code == 65:
            lines = err.strip().splitlines()
            assert len(lines) == 1, (path.name, err)
            assert lines[0].startswith(f"bulktag: error: {path}"), (path.name, err)
            continue
        assert code in (0, 1), (path.name, code, err)
        with rejects.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        assert (code == 1) == bool(rows), path.name
        for row in rows:
            assert row["line"].isdigit(), (path.name, row)
            assert row["reason"], (path.name, row)
            assert row["source"] == str(path), (path.name, row)
    # the generator must reach all three outcomes, or it tests too little
    assert min(outcomes[code] for code in (0, 1, 65)) >= 20, outcomes
    assert sum(outcomes.values()) == CASES
