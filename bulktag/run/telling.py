"""What a run tells on the terminal besides its summary: the plan before it sends, and
what to do next after it."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from bulktag.config import RunConfig
from bulktag.errors import ExitCode
from bulktag.outcomes import FailureType, Status
from bulktag.outputs.console import describe_plan, estimate
from bulktag.outputs.publish import Published
from bulktag.outputs.summary import Summary
from bulktag.plan.build import Plan
from bulktag.plan.skip import (
    ALREADY_APPLIED,
    ALREADY_TAGGED,
    FAILED_BEFORE,
    requests_to_send,
    skipped_contacts,
)
from bulktag.read.ownfiles import CARRY_OVER
from bulktag.run.checks import key_source

__all__ = ["advice", "log_plan"]

log = logging.getLogger("bulktag")

#: Why a plan's contacts need no call, as the plan says it.
_SKIPPED = {
    ALREADY_APPLIED: "whose tags the job's ledger says were applied",
    FAILED_BEFORE: "whose tags failed for good on an earlier night (--retry-permanent sends "
    "them; see permanent-failures.csv)",
    ALREADY_TAGGED: "already tagged in the CRM",
}


def log_plan(config: RunConfig, resumed: bool, plan: Plan, quota_left: int | None) -> None:
    """The plan, logged before anything is sent: what it holds, what it skips, the URL
    and the key's source; a warning when it needs more than today's quota."""
    settings = config.dispatch
    lines = describe_plan(plan.stats, settings, config.plan_name, quota_left)
    skipped = skipped_contacts(plan.path)
    needed = requests_to_send(plan.path)
    if skipped:
        lines.append(
            "not sent: "
            + ", ".join(f"{n:,} contacts {_SKIPPED[why]}" for why, n in skipped.items())
            + f"; requests to send: {needed:,}"
        )
    lines.append(f"API: {config.api_url} ({config.api_url_from}); key {key_source(config)}")
    log.info(
        "%s:\n%s",
        "resuming the plan" if resumed else "plan",
        "\n".join(lines),
        extra={"block": True, "plan": plan.stats.as_json()},
    )
    left = replace(plan.stats, requests=needed)
    if estimate(left, settings, quota_left).exceeds_today and not config.dry_run:
        log.warning(
            "the plan needs %s calls, more than today's quota allows: the rest is deferred",
            f"{needed:,}",
        )


def advice(config: RunConfig, run_dir: Path, summary: Summary, published: Published) -> list[str]:
    """What the outcome suggests doing next: the command that finishes the work, or a
    likely cause (every contact not found: another workspace's key)."""
    counts, types = summary.contacts, summary.failures_by_type
    lines = []
    not_found = types.get(FailureType.NOT_FOUND, 0)
    if not_found >= 2 and not_found == sum(types.values()) and not counts.get(Status.OK):
        lines.append(
            f"every contact sent was not_found: is {key_source(config)} for another "
            "workspace? (LeadLex reports another workspace's contacts as not found)"
        )
    if summary.exit_code is not ExitCode.WORK_LEFT:
        return lines
    if config.job is not None:
        line = f"next: the job's next run sends what is left ({config.job.command})"
        unsent = counts.get(Status.DEFERRED, 0) + counts.get(Status.NOT_ATTEMPTED, 0)
        if unsent:  # a night lists the contacts it sent
            line += f"; the {unsent:,} contacts not sent are in its {CARRY_OVER}"
        lines.append(line)
        return lines
    if counts.get(Status.DEFERRED, 0) + counts.get(Status.NOT_ATTEMPTED, 0):
        lines.append(f"next: bulktag run --resume {run_dir}   (sends what was not sent)")
    if summary.plan.waiting_rows:
        waiting = " ".join(i.source for i in summary.plan.inputs if i.match == "email")
        lines.append(
            f"next: bulktag run {waiting} --max-wait 3600   (in an hour: its "
            f"{summary.plan.waiting_rows:,} rows wait for the workspace's directory)"
        )
    if published.retryable_failures:
        lines.append(f"next: bulktag run {published.failures}   (sends the failures again)")
    return lines
