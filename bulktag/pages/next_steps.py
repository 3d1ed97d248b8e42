"""The "What next" box at the top of a run's report: what to run, when, and what needs a
person, in plain words, with the exact commands.

Built from the run folder's files alone (:class:`~bulktag.pages.facts.RunFacts`), in
the order a person acts on them: a fault of the whole run first (nothing else can go
right until it is fixed), then the work left and the command that sends it, then what
needs a person (rejected rows by file and line, contacts LeadLex does not know, tags it
refused), then what the exit code means to cron.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bulktag.pages.facts import RunFacts
from bulktag.pages.figures import Figures

__all__ = ["Step", "next_steps"]

#: Halts that are a fault of the whole run: fixed once, not contact by contact.
RUN_WIDE = {"config_fault", "unreachable", "key_rejected", "outage"}

CRON = {
    0: "exit 0: nothing is left to do; cron and systemd see a success.",
    1: (
        "exit 1: the run finished, but what is listed above needs a person; running it "
        "again changes nothing for them. Cron sees a failure: that is the signal to look."
    ),
    70: "exit 70: a bug in bulktag; its traceback is in $BULKTAG_STATE_DIR/bugs/.",
    75: (
        "exit 75: work is left for a later run; not a failure. The shipped systemd unit "
        "counts it as a success (SuccessExitStatus=75); from cron, treat 75 as 'try again "
        "later'."
    ),
    77: "exit 77: LeadLex refused the key: fix the key, then run again.",
    78: "exit 78: the configuration must change before a run can succeed.",
}
DRY_CRON = {
    0: "exit 0 of a dry run: a run would send all of it.",
    1: "exit 1 of a dry run: rows were rejected; a run would send the rest.",
}


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  #: fault, send, person, done, cron
    text: str  #: plain words
    command: str = ""  #: the exact command, when there is one


def _q(path: object) -> str:
    return shlex.quote(str(path))


def _when(summary: Mapping[str, Any]) -> str:
    reset = (summary.get("quota") or {}).get("reset")
    if not reset:
        return ""
    return datetime.fromtimestamp(int(reset), UTC).strftime("%Y-%m-%d %H:%M UTC")


def _lines(facts: RunFacts) -> str:
    """The rejected rows by file, with the lines the examples show."""
    by_file: dict[str, list[str]] = {}
    for group in facts.rejects:
        for source, line, *_ in group.examples:
            by_file.setdefault(Path(source).name or source, []).append(line)
    parts = []
    for name, lines in by_file.items():
        shown = sorted({int(x) for x in lines if x.isdigit()})
        parts.append(
            f"{name} (lines {', '.join(map(str, shown[:8]))}{', ...' if len(shown) > 8 else ''})"
            if shown
            else name
        )
    return "; ".join(parts)


def next_steps(facts: RunFacts, figures: Figures) -> list[Step]:
    s, config = facts.summary, facts.config
    job = config.get("job_settings") or {}
    job_file = job.get("file") if s.get("job") else None
    code = int(s.get("exit_code", 0))
    files = dict(facts.files)
    steps: list[Step] = []
    halt = s.get("halt")
    if figures.dry_run:
        inputs = " ".join(_q(i) for i in config.get("inputs") or [])
        command = f"bulktag run --job {_q(job_file)}" if job_file else f"bulktag run {inputs}"
        steps.append(
            Step(
                "send",
                f"Dry run: nothing was sent. A run would send {figures.would_calls:,} calls "
                f"adding {figures.would_tags:,} tags to {figures.would_contacts:,} contacts"
                + (f" ({figures.skipped:,} skipped as done)" if figures.skipped else "")
                + ". To send it, run the same command without --dry-run"
                + (": the job's next night does it." if job_file else ":"),
                command,
            )
        )
    elif halt in RUN_WIDE:
        steps.append(
            Step(
                "fault",
                f"The run stopped on a fault of the whole run, not of its contacts: "
                f"{s.get('halt_message') or halt}. Fix that first.",
            )
        )
    unsent = figures.deferred + figures.not_attempted
    failed_again = _retryable_failed(facts)
    if (unsent or failed_again) and not figures.dry_run:
        failures = facts.run_dir / files.get("failures", "failures.csv")
        reset = _when(s)
        quota_spent = halt == "quota_exhausted" or "quota_exhausted" in (
            facts.types_by_status.get("deferred") or {}
        )
        when = f" after the daily quota resets ({reset})" if quota_spent and reset else ""
        if job_file:
            steps.append(
                Step(
                    "send",
                    f"{unsent + failed_again:,} contacts still to send. The job's next night "
                    f"sends them first{when}: nothing to do. To send them sooner:",
                    f"bulktag run --job {_q(job_file)}",
                )
            )
        elif halt in RUN_WIDE:  # other settings: a new run of the failures file
            steps.append(
                Step(
                    "send",
                    f"{unsent + failed_again:,} contacts still to send: once it is fixed, run "
                    "the failures file (with the fixed settings):",
                    f"bulktag run {_q(failures)}",
                )
            )
        else:
            if unsent:
                steps.append(
                    Step(
                        "send",
                        f"{unsent:,} contacts were not sent: finish this run{when}:",
                        f"bulktag run --resume {_q(facts.run_dir)}",
                    )
                )
            if failed_again:
                steps.append(
                    Step(
                        "send",
                        f"{failed_again:,} contacts failed in a way a re-run may fix: send the "
                        "failures file again, until the exit code is 0 or 1:",
                        f"bulktag run {_q(failures)}",
                    )
                )
    permanent = facts.types_by_status.get("failed") or {}
    if permanent.get("not_found"):
        steps.append(
            Step(
                "person",
                f"{permanent['not_found']:,} contacts LeadLex does not know (not_found): check "
                "their IDs in the CRM, or whether they belong to another workspace. Re-runs "
                "skip them; --retry-permanent sends them again once they exist.",
            )
        )
    if permanent.get("validation_error"):
        steps.append(
            Step(
                "person",
                f"LeadLex refused the tags of {permanent['validation_error']:,} contacts "
                "(validation_error): the messages under Failures say why; fix the tags in the "
                "input and run those rows again.",
            )
        )
    if figures.rejected:
        rejects = files.get("rejects", "rejects.csv")
        steps.append(
            Step(
                "person",
                f"{figures.rejected:,} input rows could not be used and were not sent: "
                f"{_lines(facts)}. {rejects} lists every one with its reason; fix them in the "
                "input and run those rows again.",
            )
        )
    if not steps:
        steps.append(Step("done", "Nothing to do: every contact has its tags."))
    meaning = (DRY_CRON if figures.dry_run else CRON).get(code)
    if meaning:
        steps.append(Step("cron", meaning))
    return steps


def _retryable_failed(facts: RunFacts) -> int:
    failed = facts.types_by_status.get("failed") or {}
    return sum(n for kind, n in failed.items() if kind not in ("not_found", "validation_error"))
