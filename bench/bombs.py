"""Hostile sizes: each bomb a real ``bulktag run --dry-run`` in a memory cgroup of 1 GiB.

Every input here is one a cron job could be handed by mistake or by malice. Each is read
by the real command, as a process of its own, inside a cgroup (v1 or v2) whose memory
limit is 1 GiB: a process that needs more is killed by the kernel (exit 137), as an
operations engineer's systemd ``MemoryMax=`` would. The figures are the exit code, the
cgroup's peak (``memory.max_usage_in_bytes`` / ``memory.peak``), the wall time, and the
first words of the one line bulktag said. Each must end in exit 65 and one line, never an
OOM kill; a legitimate full sheet (1,048,575 rows) is the baseline, and must be read.

Without a cgroup it can write (not root, no delegation), the peak is the child's
``ru_maxrss`` and no limit holds: the table says so.

``python -m bench --only bombs``.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import struct
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path

from bench.common import ROOT, Section

LIMIT = 1 << 30
ID = "123e4567-e89b-12d3-a456-426614174000"

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
    'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.'
    'worksheet+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="xl/workbook.xml"/></Relationships>'
)
_BOOK = (
    '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/'
    'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships"><sheets><sheet name="Export" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_BOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats'
    '.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.'
    'openxmlformats.org/officeDocument/2006/relationships/worksheet" '
    'Target="worksheets/sheet1.xml"/></Relationships>'
)


def xlsx_bomb(path: Path, inflated: int, *, declared: int | None = None) -> Path:
    """An XLSX whose one sheet holds a header row and one cell of ``inflated`` bytes of
    ``a`` (deflate takes it down a thousand times); ``declared``: the sheet's size as its
    ZIP headers claim it (a lie), else the truth."""
    head = (
        '<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.'
        'org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
        'contact_id</t></is></c><c r="B1" t="inlineStr"><is><t>tags</t></is></c></row>'
        f'<row r="2"><c r="A2" t="inlineStr"><is><t>{ID}</t></is></c><c r="B2" t="inlineStr">'
        "<is><t>"
    ).encode()
    tail = b"</t></is></c></row></sheetData></worksheet>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as book:
        book.writestr("[Content_Types].xml", _CONTENT_TYPES)
        book.writestr("_rels/.rels", _RELS)
        book.writestr("xl/workbook.xml", _BOOK)
        book.writestr("xl/_rels/workbook.xml.rels", _BOOK_RELS)
        block = b"a" * (1 << 20)
        with book.open(
            "xl/worksheets/sheet1.xml", "w", force_zip64=inflated + (1 << 16) > 2**31
        ) as sheet:
            sheet.write(head)
            left = inflated
            while left > 0:
                sheet.write(block[: min(left, len(block))])
                left -= len(block)
            sheet.write(tail)
    if declared is not None:
        _declare(path, "xl/worksheets/sheet1.xml", declared)
    return path


def _declare(path: Path, name: str, size: int) -> None:
    """Rewrite ``name``'s uncompressed size in its local and central headers (no ZIP64)."""
    with zipfile.ZipFile(path) as book:
        info = book.getinfo(name)
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, info.header_offset + 22, size)
    at = data.find(name.encode(), 0)
    while at != -1:
        header = at - 46
        if data[header : header + 4] == b"PK\x01\x02":
            struct.pack_into("<I", data, header + 24, size)
        at = data.find(name.encode(), at + 1)
    path.write_bytes(bytes(data))


def csv_cell(path: Path, size: int, *, one_tag: bool) -> Path:
    """A CSV of one row whose tags cell is ``size`` bytes: one tag, or tags ``t0,t1,...``."""
    block = (
        b"a" * (1 << 20)
        if one_tag
        else (",".join(f"t{i}" for i in range(200_000)) + ",").encode()[: 1 << 20]
    )
    with path.open("wb") as handle:
        handle.write(f'contact_id,tags\n{ID},"'.encode())
        left = size
        while left > 0:
            handle.write(block[: min(left, len(block))])
            left -= len(block)
        handle.write(b'"\n')
    return path


def many_tags(path: Path, tags: int) -> Path:
    """One contact given ``tags`` distinct tags, a row each."""
    with path.open("w") as handle:
        handle.write("contact_id,tags\n")
        handle.writelines(f"{ID},tag-{i}\n" for i in range(tags))
    return path


def gz_bomb(path: Path, size: int) -> Path:
    with gzip.open(path, "wb", compresslevel=9) as handle:
        handle.write(f"contact_id,tags\n{ID},".encode())
        block = b"a" * (1 << 20)
        for _ in range(size // len(block)):
            handle.write(block)
    return path


def legit_sheet(path: Path, rows: int) -> Path:
    import xlsxwriter

    with xlsxwriter.Workbook(path, {"constant_memory": True}) as book:
        sheet = book.add_worksheet("Export")
        sheet.write_row(0, 0, ["contact_id", "tags"])
        for i in range(1, rows + 1):
            sheet.write_row(i, 0, [str(uuid.UUID(int=i, version=4)), "spring, vip"])
    return path


#: name, what it is, how it is made (folder -> file), the exit expected
BOMBS: list[tuple[str, str, Callable[[Path], Path], int]] = [
    (
        "xlsx-4gib",
        "XLSX of 4 MiB whose sheet inflates to 4 GiB",
        lambda d: xlsx_bomb(d / "bomb.xlsx", 4 << 30),
        65,
    ),
    (
        "xlsx-liar",
        "XLSX whose sheet declares 1 MiB and inflates to 1.5 GiB",
        lambda d: xlsx_bomb(d / "liar.xlsx", 1536 << 20, declared=1 << 20),
        65,
    ),
    (
        "cell-of-tags",
        "CSV, one cell of 200 MB holding 22M tags",
        lambda d: csv_cell(d / "tags.csv", 200_000_000, one_tag=False),
        65,
    ),
    (
        "cell-one-tag",
        "CSV, one cell of 200 MB holding one tag",
        lambda d: csv_cell(d / "tag.csv", 200_000_000, one_tag=True),
        65,
    ),
    (
        "contact-tags",
        "CSV, one contact given 100,000 tags (a row each)",
        lambda d: many_tags(d / "many.csv", 100_000),
        65,
    ),
    ("gzip", "CSV.gz of 1 MiB inflating to 1 GiB", lambda d: gz_bomb(d / "b.csv.gz", 1 << 30), 65),
    (
        "legit-sheet",
        "baseline: a full XLSX sheet, 1,048,575 contacts (read, not refused)",
        lambda d: legit_sheet(d / "full.xlsx", 1_048_575),
        0,
    ),
]


class Cgroup:
    """A memory cgroup (v2, else v1) of ``limit`` bytes for one child; None when none can be
    made here."""

    def __init__(self, path: Path, version: int, limit: int) -> None:
        self.path, self.version = path, version
        path.mkdir()
        (path / ("memory.max" if version == 2 else "memory.limit_in_bytes")).write_text(str(limit))
        if version == 1:
            (path / "memory.swappiness").write_text("0")
        else:
            (path / "memory.swap.max").write_text("0")

    @classmethod
    def make(cls, limit: int) -> Cgroup | None:
        name = f"bulktag-bench-{os.getpid()}-{time.monotonic_ns()}"
        for base, version in (
            (Path("/sys/fs/cgroup"), 2),
            (Path("/sys/fs/cgroup/memory"), 1),
        ):
            marker = base / ("cgroup.controllers" if version == 2 else "memory.limit_in_bytes")
            if not marker.exists():
                continue
            try:
                return cls(base / name, version, limit)
            except OSError:
                continue
        return None

    def enter(self) -> None:
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def peak(self) -> int:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        return int((self.path / name).read_text())

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.rmdir()


def measure(path: Path, folder: Path, limit: int) -> tuple[int, float, float, float, str, bool]:
    """``bulktag run PATH --dry-run`` under ``limit``: exit code, the cgroup's peak MiB (its
    page cache counted: the kernel reclaims that before it kills), the process's peak RSS
    MiB, seconds, its error line, and whether a cgroup held the limit."""
    group = Cgroup.make(limit)
    command = [sys.executable, "-m", "bulktag", "run", str(path), "--dry-run"]
    command += ["--out", str(folder / f"out-{path.stem}"), "--log-format", "text"]
    started = time.monotonic()
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=err,
            preexec_fn=None if group is None else group.enter,  # noqa: PLW1509  (cgroup first)
            env={**os.environ, "BULKTAG_STATE_DIR": str(folder / "state")},
            cwd=ROOT,
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    seconds = time.monotonic() - started
    rss = usage.ru_maxrss / 1024
    peak = rss
    if group is not None:
        peak = group.peak() / (1 << 20)
        group.remove()
    lines = [line for line in stderr.splitlines() if "error" in line.lower()]
    said = lines[-1] if lines else ""
    return child.returncode, peak, rss, seconds, said, group is not None


def run(*, quick: bool = False) -> Section:
    section = Section(
        key="bombs",
        title="Hostile sizes: bombs under a 1 GiB memory limit",
        method=__doc__.split("\n\n")[1].replace("\n", " ") if __doc__ else "",
        columns=[
            "input",
            "file MiB",
            "exit",
            "cgroup peak MiB",
            "RSS MiB",
            "s",
            "what bulktag said",
        ],
    )
    chosen = [b for b in BOMBS if not quick or b[0] not in ("xlsx-4gib", "legit-sheet")]
    with tempfile.TemporaryDirectory(prefix="bulktag-bombs-") as temp:
        folder = Path(temp)
        limited = True
        for name, what, make, expected in chosen:
            path = make(folder)
            size = path.stat().st_size / (1 << 20)
            limit = LIMIT if expected else 4 * LIMIT  # the baseline: 4 GiB
            code, peak, rss, seconds, said, limited = measure(path, folder, limit)
            words = said.split(": error: ", 1)[-1].replace(str(folder) + "/", "")[:150]
            section.rows.append([what, size, code, peak, rss, seconds, words])
            section.figures[name] = {
                "exit": code,
                "expected": expected,
                "cgroup_peak_mib": round(peak),
                "rss_mib": round(rss),
                "seconds": round(seconds, 2),
            }
            path.unlink()
    if not limited:
        section.notes.append("no cgroup could be made here: the peak is ru_maxrss, no limit held")
    section.notes.append(
        "the baseline runs under 4 GiB: it is read, every row, and its results written as XLSX"
    )
    ok = all(v["exit"] == v["expected"] for v in section.figures.values())
    section.notes.append(
        f"every bomb refused with exit 65 in one line, none killed: {'yes' if ok else 'NO'}"
    )
    return section


if __name__ == "__main__":
    print(run(quick="--quick" in sys.argv).markdown())
