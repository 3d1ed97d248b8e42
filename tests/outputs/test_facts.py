"""What the report reads from a run folder: the aggregations over the failures and rejects."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from bulktag.outputs.pages.facts import EXAMPLES, SAMPLE, read_run


def _folder(tmp_path: Path, failures: pl.DataFrame, types: dict[str, int]) -> Path:
    failures.write_csv(tmp_path / "failures.csv")
    summary = {
        "run_id": "r",
        "failures_by_type": types,
        "rejects": {"total": 0, "by_reason": {}},
        "files": {"failures": str(tmp_path / "failures.csv")},
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    return tmp_path


def _rows(kind: str, message: str, n: int, status: str = "failed") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "contact_id": [f"{kind}-{i}" for i in range(n)],
            "tags": ["a"] * n,
            "status": [status] * n,
            "error_type": [kind] * n,
            "message": [message] * n,
        }
    )


def test_the_most_frequent_messages_come_first(tmp_path: Path) -> None:
    """Per type: messages by how many contacts had them; types by how many contacts."""
    failures = pl.concat(
        [
            _rows("server_error", "HTTP 503", 2),
            _rows("not_found", "Contact not found", 4),
            _rows("server_error", "HTTP 500", 5),
            _rows("server_error", "HTTP 502", 1),
        ]
    )
    facts = read_run(_folder(tmp_path, failures, {"server_error": 8, "not_found": 4}))
    assert [(g.error_type, g.count) for g in facts.failures] == [
        ("server_error", 8),
        ("not_found", 4),
    ]
    # one shape, its numbers folded, with the first message of that shape as its example
    assert facts.failures[0].messages == (("HTTP <n>", 8, "HTTP 503"),)
    assert facts.failures[1].messages == (("Contact not found", 4, "Contact not found"),)
    assert [c for c, _ in facts.failures[1].examples] == [
        "not_found-0",
        "not_found-1",
        "not_found-2",
    ]
    assert facts.types_by_status == {"failed": {"server_error": 8, "not_found": 4}}


def test_examples_are_found_beyond_the_first_rows(tmp_path: Path) -> None:
    """A type whose first contact comes after the sampled rows still gets its examples."""
    failures = pl.concat(
        [
            _rows("quota_exhausted", "spent", SAMPLE + 10, "deferred"),
            _rows("timeout", "no answer in 30 s", 2),
        ]
    )
    facts = read_run(_folder(tmp_path, failures, {"quota_exhausted": SAMPLE + 10, "timeout": 2}))
    examples = {g.error_type: g.examples for g in facts.failures}
    assert len(examples["quota_exhausted"]) == EXAMPLES
    assert examples["timeout"] == (("timeout-0", "a"), ("timeout-1", "a"))


def test_a_csv_cell_kept_from_a_spreadsheet_formula_reads_as_written(tmp_path: Path) -> None:
    """The apostrophe a CSV output puts before '=', '+', '-', '@' is not shown."""
    failures = _rows("validation_error", "'=HYPERLINK(x)", 1).with_columns(tags=pl.lit("'-vip"))
    facts = read_run(_folder(tmp_path, failures, {"validation_error": 1}))
    assert facts.failures[0].messages == (("=HYPERLINK(x)", 1, "=HYPERLINK(x)"),)
    assert facts.failures[0].examples == (("validation_error-0", "-vip"),)


def test_messages_group_by_their_shape(tmp_path: Path) -> None:
    """40 contacts behind a wrong URL: one message shape (the IDs and URL folded), not 40
    messages of one contact each; the shape keeps one real message as its example."""
    ids = [f"123e4567-e89b-42d3-a456-4266141740{n:02d}" for n in range(40)]
    failures = pl.DataFrame(
        {
            "contact_id": ids,
            "tags": ["a"] * 40,
            "status": ["failed"] * 40,
            "error_type": ["unexpected_response"] * 40,
            "message": [
                f"No route for POST /v1/v1/contacts/{i}/tags at https://x.test/v1/contacts/{i}"
                for i in ids
            ],
        }
    )
    facts = read_run(_folder(tmp_path, failures, {"unexpected_response": 40}))
    ((folded, n, example),) = facts.failures[0].messages
    assert folded == "No route for POST /v1/v1/contacts/<id>/tags at <url>"
    assert n == 40
    assert example == failures["message"][0]
