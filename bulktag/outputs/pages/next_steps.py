"""The "What next" box at the top of a run's report: what to run, when, and what needs a
person, in plain words, with the exact commands.

Built from the run folder's files alone (:class:`~bulktag.outputs.pages.facts.RunFacts`), in
the order a person acts on them: a fault of the whole run first (nothing else can go
right until it is fixed), then the work left and the command that sends it, then what
needs a person (rejected rows by file and line, contacts LeadLex does not know, tags it
refused), then what the exit code means to cron.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulktag.clock import utc_minute
from bulktag.outcomes import FailureType, Halt
from bulktag.outputs.pages.facts import RunFacts
from bulktag.outputs.pages.figures import Figures
from bulktag.state.rundir import RunPaths

__all__ = ["Step", "next_steps"]

#: Halts that are a fault of the whole run: fixed once, not contact by contact.
RUN_WIDE = frozenset({Halt.CONFIG, Halt.UNREACHABLE, Halt.KEY_REJECTED, Halt.OUTAGE})

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


def _rows(n: int, what: str = "") -> str:
    return f"{n:,} {what}row{'' if n == 1 else 's'}"


def _q(path: object) -> str:
    return shlex.quote(str(path))


def _when(summary: Mapping[str, Any]) -> str:
    reset = (summary.get("quota") or {}).get("reset")
    return utc_minute(int(reset)) if reset else ""


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
    """The steps, in the order a person acts on them (see the module docstring)."""
    s = facts.summary
    job = facts.config.get("job_settings") or {}
    job_file = str(job["file"]) if s.get("job") and job.get("file") else None
    steps: list[Step] = []
    if figures.dry_run:
        steps.append(_dry(facts, figures, job_file))
    else:
        if s.get("halt") in RUN_WIDE:
            steps.append(
                Step(
                    "fault",
                    "The run stopped on a fault of the whole run, not of its contacts: "
                    f"{s.get('halt_message') or s.get('halt')}. Fix that first.",
                )
            )
        steps += _sending(facts, figures, job_file)
    steps += _people(facts, figures)
    if not steps:
        steps.append(Step("done", "Nothing to do: every contact has its tags."))
    meaning = (DRY_CRON if figures.dry_run else CRON).get(int(s.get("exit_code", 0)))
    if meaning:
        steps.append(Step("cron", meaning))
    return steps


def _dry(facts: RunFacts, figures: Figures, job_file: str | None) -> Step:
    inputs = " ".join(_q(i) for i in facts.config.get("inputs") or [])
    return Step(
        "send",
        f"Dry run: nothing was sent. A run would send {figures.would_calls:,} calls "
        f"adding {figures.would_tags:,} tags to {figures.would_contacts:,} contacts"
        + (f" ({figures.skipped:,} skipped as done)" if figures.skipped else "")
        + ". To send it, run the same command without --dry-run"
        + (": the job's next night does it." if job_file else ":"),
        f"bulktag run --job {_q(job_file)}" if job_file else f"bulktag run {inputs}",
    )


def _sending(facts: RunFacts, figures: Figures, job_file: str | None) -> list[Step]:
    """The command that sends what is left, and when."""
    s = facts.summary
    unsent = figures.deferred + figures.not_attempted
    again = _retryable_failed(facts)
    if not unsent and not again:
        return []
    named = dict(facts.files).get("failures")
    failures = facts.run_dir / named if named else RunPaths(facts.run_dir).failures_or_default()
    reset = _when(s)
    quota_spent = s.get("halt") == "quota_exhausted" or "quota_exhausted" in (
        facts.types_by_status.get("deferred") or {}
    )
    when = f" after the daily quota resets ({reset})" if quota_spent and reset else ""
    if job_file:
        return [
            Step(
                "send",
                f"{unsent + again:,} contacts still to send. The job's next night sends them "
                f"first{when}: nothing to do. To send them sooner:",
                f"bulktag run --job {_q(job_file)}",
            )
        ]
    if s.get("halt") in RUN_WIDE:  # the fix changes settings: a new run of the failures
        return [
            Step(
                "send",
                f"{unsent + again:,} contacts still to send: once it is fixed, run the "
                "failures file (with the fixed settings):",
                f"bulktag run {_q(failures)}",
            )
        ]
    steps = []
    if unsent:
        steps.append(
            Step(
                "send",
                f"{unsent:,} contacts were not sent: finish this run{when}:",
                f"bulktag run --resume {_q(facts.run_dir)}",
            )
        )
    if again:
        steps.append(
            Step(
                "send",
                f"{again:,} contacts failed in a way a re-run may fix: send the failures "
                "file again, until the exit code is 0 or 1:",
                f"bulktag run {_q(failures)}",
            )
        )
    return steps


def _people(facts: RunFacts, figures: Figures) -> list[Step]:
    """What needs a person: unknown contacts, refused tags, rejected rows."""
    steps = []
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
    plan = facts.summary.get("plan") or {}
    waiting = int(plan.get("waiting_rows") or 0)  # rejects that wait: work left, not to fix
    if waiting:
        sources = [i["source"] for i in plan.get("inputs") or () if i.get("match") == "email"]
        job = facts.summary.get("job")
        steps.append(
            Step(
                "send",
                f"{_rows(waiting)} matched by email {'waits' if waiting == 1 else 'wait'} for "
                "the workspace's directory, which "
                "LeadLex's hourly export limit did not let bulktag read whole tonight: "
                + (
                    "the job's next night goes on from the pages it read."
                    if job
                    else "run them again in an hour, waiting for the limit:"
                ),
                "" if job else f"bulktag run {' '.join(_q(s) for s in sources)} --max-wait 3600",
            )
        )
    if figures.rejected - waiting:
        rejects = (
            dict(facts.files).get("rejects")
            or RunPaths(facts.run_dir).output("rejects", "csv").name
        )
        steps.append(
            Step(
                "person",
                f"{_rows(figures.rejected - waiting, 'input ')} could not be used and were not "
                "sent: "
                f"{_lines(facts)}. {rejects} lists every one with its reason; fix them in the "
                "input and run those rows again.",
            )
        )
    return steps


def _retryable_failed(facts: RunFacts) -> int:
    """Contacts failed with a type a re-run may fix (a type this version does not know
    counts as one: it is left for a person to read, never dropped)."""
    failed = facts.types_by_status.get("failed") or {}
    return sum(n for kind, n in failed.items() if _retryable(kind))


def _retryable(kind: str) -> bool:
    try:
        return FailureType(kind).retryable
    except ValueError:
        return True
