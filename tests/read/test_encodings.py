"""Text files in the encodings people's tools write: read right, or refused, never read wrong.

``tests/fixtures/encodings/`` holds 38 contact exports in 26 encodings, written by LibreOffice
Calc and GNU iconv (``make_encodings.py``), each with what the person wrote, computed without
bulktag. A tag LeadLex receives stays for good, so a file bulktag is not sure of is refused
(exit 65, with the tags as each reading gives them and ``--encoding``), never guessed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from tests.constants import KEY

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "encodings"
FILES = sorted(FIXTURES.glob("*.csv"))
UNSURE = "the encoding is not certain"


def _contacts(results: Path) -> dict[str, list[str]]:
    with results.open(encoding="utf-8", newline="") as handle:
        return {row["contact_id"]: row["tags"].split(",") for row in csv.DictReader(handle)}


def _read(
    path: Path, out: Path, capsys: pytest.CaptureFixture[str], *extra: str
) -> tuple[int, str]:
    code = main(["run", str(path), "--dry-run", "--out", str(out), "--format", "csv", *extra])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_a_legacy_encoding_is_read_right_or_refused(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each file: every contact with the tags the person wrote, or exit 65 saying the
    encoding is not certain (and nothing read); never other tags."""
    expected = json.loads(path.with_name(path.name + ".expected.json").read_text("utf-8"))
    code, err = _read(path, tmp_path / "out", capsys)
    if code == ExitCode.INPUT_UNUSABLE:
        assert UNSURE in err, err
        assert "--encoding" in err
        return
    assert code == ExitCode.OK, err
    assert _contacts(tmp_path / "out" / "results.csv") == expected["contacts"]


def test_nearly_every_file_is_read_without_help(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refusing is for what two detectors disagree on: at most 2 of the 38 files (the
    figures of bulktag/read/encoding.py's docstring); each refused file reads right with the
    --encoding its message names first... or the other one it names."""
    refused = []
    for n, path in enumerate(FILES):
        code, err = _read(path, tmp_path / f"out{n}", capsys)
        if code == ExitCode.INPUT_UNUSABLE:
            refused.append((path, err))
    assert len(refused) <= 2, [p.name for p, _ in refused]
    for n, (path, err) in enumerate(refused):
        expected = json.loads(path.with_name(path.name + ".expected.json").read_text("utf-8"))
        named = [part.split(":")[0] for part in err.split("as ")[1:]]
        assert expected["encoding"].replace("_", "") in {e.replace("_", "") for e in named}, err
        code, _ = _read(path, tmp_path / f"fixed{n}", capsys, "--encoding", expected["encoding"])
        assert code == ExitCode.OK
        assert _contacts(tmp_path / f"fixed{n}" / "results.csv") == expected["contacts"]


def test_the_plan_says_how_the_encoding_was_found(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Japanese CP932 file from LibreOffice: the plan names cp932, found by two detectors."""
    path = FIXTURES / "libreoffice_japanese_cp932.csv"
    code, err = _read(path, tmp_path / "out", capsys, "-v", "--log-format", "text")
    assert code == ExitCode.OK
    assert "cp932 (detected: chardetng and chardet agree)" in err
    tags = {t for found in _contacts(tmp_path / "out" / "results.csv").values() for t in found}
    assert "重要顧客" in tags


def test_a_file_cut_inside_its_last_character_is_utf8_and_its_last_row_a_reject(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """150 rows of UTF-8 copied while the exporter was still writing, cut inside ü: read as
    UTF-8 (not Mac Roman: ``Müller GmbH`` stays itself), the last row a reject saying so."""
    rows = [f"{n:08d}-0000-4000-8000-{n:012d},Müller GmbH\n" for n in range(150)]
    data = ("contact_id,tags\n" + "".join(rows)).encode("utf-8")
    cut = data[: data.rindex("ü".encode()) + 1]  # the first byte of the last ü
    path = tmp_path / "export.csv"
    path.write_bytes(cut)
    code, err = _read(path, tmp_path / "out", capsys)
    assert code == ExitCode.FAILURES, err
    contacts = _contacts(tmp_path / "out" / "results.csv")
    assert len(contacts) == 149
    assert {t for tags in contacts.values() for t in tags} == {"Müller GmbH"}
    with (tmp_path / "out" / "rejects.csv").open(encoding="utf-8", newline="") as handle:
        (reject,) = list(csv.DictReader(handle))
    assert reject["line"] == "151"
    assert "the file ends inside a character: cut while it was being written?" in reject["reason"]


def test_an_uncertain_file_sends_nothing_and_says_how_to_read_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """EUC-JP that chardet takes for GB18030: a real run stops before any call (65), showing
    a few tags as each reading gives them and the --encoding to give."""
    monkeypatch.setenv("LEADLEX_API_KEY", KEY)
    path = FIXTURES / "libreoffice_japanese_euc_jp.csv"
    code = main(
        ["run", str(path), "--out", str(tmp_path / "out"), "--api-url", "http://127.0.0.1:9"]
    )
    err = capsys.readouterr().err
    assert code == ExitCode.INPUT_UNUSABLE
    assert UNSURE in err
    assert "as euc_jp: '重要顧客" in err
    assert "--encoding euc_jp" in err
    assert not (tmp_path / "out").exists()  # nothing written, nothing sent
