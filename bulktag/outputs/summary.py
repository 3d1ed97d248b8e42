"""A finished run, as one typed value: everything else about the run is derived from it.

:class:`Summary` is built once, at the end of a run
(:meth:`bulktag.run.stages.Run._summarise`), and is frozen. ``summary.json`` is
:meth:`Summary.to_json`, the stderr summary is :func:`bulktag.outputs.console.summary_lines`,
the metrics file is :func:`bulktag.outputs.metrics.write_metrics` and the exit code is
:attr:`Summary.exit_code`, decided here by :func:`exit_code` and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bulktag import __version__
from bulktag.clock import iso_utc
from bulktag.errors import ExitCode
from bulktag.outcomes import FailureType, Halt, Status
from bulktag.plan.build import PlanStats
from bulktag.send.timeline import TimelineMinute, timeline_json

__all__ = ["OutputFiles", "QuotaView", "RateView", "Summary", "exit_code"]


@dataclass(frozen=True, slots=True)
class QuotaView:
    """The daily quota as LeadLex last reported it (None: no call was answered)."""

    limit: int | None = None
    remaining: int | None = None
    reset: int | None = None  #: Unix seconds
    before: int | None = None  #: left before the session (its first answer, plus that call)


@dataclass(frozen=True, slots=True)
class RateView:
    configured_per_minute: float | None
    final_per_minute: float | None = None  #: where the limiter ended (429s lower it)
    rate_limited_429s: int = 0


@dataclass(frozen=True, slots=True)
class OutputFiles:
    results: Path
    failures: Path
    rejects: Path
    summary: Path


@dataclass(frozen=True, slots=True)
class Summary:
    """What a run did; ``summary.json`` is :meth:`to_json`."""

    run_id: str
    job: str | None
    resumed: bool
    started_at: float  #: Unix seconds
    finished_at: float
    duration_seconds: float  #: of this process's session (a resumed run: the last one)
    exit_code: ExitCode
    dry_run: bool
    api_url: str
    plan: PlanStats
    contacts: Mapping[str, int]  #: contacts by status
    skipped_by_reason: Mapping[str, int]
    failures_by_type: Mapping[str, int]
    calls: Mapping[str, int]  #: calls made to LeadLex by endpoint, every session of the run
    precheck: Mapping[str, Any] | None  #: what ``--skip-existing`` asked and saved
    verified: int  #: ok because a read showed the tags after an ambiguous failure
    quota: QuotaView
    halt: Halt | None
    halt_message: str
    rate: RateView
    files: OutputFiles
    #: calls per minute of the (last) session, from ``timeline_started`` (Unix seconds)
    timeline: tuple[TimelineMinute, ...] = ()
    timeline_started: float | None = None
    timeline_fine: tuple[TimelineMinute, ...] | None = None  #: of a session under 3 minutes
    bulktag: str = __version__

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())

    @property
    def naive_calls(self) -> int:
        """The calls the plan needed before anything was skipped (one per request)."""
        return self.plan.requests

    @property
    def calls_saved(self) -> int:
        """Calls not spent on work already done: one per contact skipped (in the CRM
        already, applied by the job, failed for good before) less the pre-check's
        exports (not the exports of a directory of contacts by email, which finds who
        to tag). Contacts left for later (deferred, not attempted) save nothing, and
        retries are counted as retries (the report), not against the savings."""
        by_email = self.plan.by_email or {}
        exports = int(self.calls.get("export", 0)) - int(by_email.get("export_calls", 0))
        return int(self.contacts.get("skipped", 0)) - exports

    def to_json(self) -> dict[str, Any]:
        return {
            "bulktag": self.bulktag,
            "run_id": self.run_id,
            "job": self.job,
            "resumed": self.resumed,
            "started_at": iso_utc(self.started_at),
            "finished_at": iso_utc(self.finished_at),
            "duration_seconds": round(self.duration_seconds, 3),
            "exit_code": int(self.exit_code),
            "exit_meaning": self.exit_code.meaning,
            "dry_run": self.dry_run,
            "api_url": self.api_url,
            "plan": self.plan.as_json(),
            "contacts": {"planned": self.plan.contacts, **self.contacts},
            "skipped_by_reason": dict(self.skipped_by_reason),
            "failures_by_type": dict(self.failures_by_type),
            "rejects": {"total": self.plan.rejects, "by_reason": dict(self.plan.rejects_by_reason)},
            "calls": {**self.calls, "total": self.total_calls},
            "naive_calls": self.naive_calls,
            "calls_saved": self.calls_saved,
            "precheck": None if self.precheck is None else dict(self.precheck),
            "verified": self.verified,
            "quota": {
                "limit": self.quota.limit,
                "remaining": self.quota.remaining,
                "reset": self.quota.reset,
                "before": self.quota.before,
            },
            "halt": None if self.halt is None else str(self.halt),
            "halt_message": self.halt_message,
            "rate": {
                "configured_per_minute": self.rate.configured_per_minute,
                "final_per_minute": self.rate.final_per_minute,
                "rate_limited_429s": self.rate.rate_limited_429s,
            },
            "timeline": timeline_json(
                self.timeline_started,
                self.timeline,
                self.rate.configured_per_minute,
                self.rate.final_per_minute,
                self.timeline_fine,
            ),
            "files": {
                "results": str(self.files.results),
                "failures": str(self.files.failures),
                "rejects": str(self.files.rejects),
                "summary": str(self.files.summary),
            },
        }


def exit_code(
    halt: Halt | None,
    counts: Mapping[str, int],
    types: Mapping[str, int],
    rejects: int,
    *,
    dry_run: bool = False,
    waiting: int = 0,
) -> ExitCode:
    """The exit code, by precedence: 77 > 78 > 75 > 1 > 0. ``waiting``: rejected rows that
    wait (matched by email, the directory not read whole tonight): work left, as a
    deferred contact is. A dry run sends nothing, so what is left to send is not work
    left: 1 when rows were rejected for good, else 0."""
    if halt is Halt.KEY_REJECTED:
        return ExitCode.KEY_REJECTED
    if halt is Halt.CONFIG:
        return ExitCode.CONFIG
    left = counts.get(Status.DEFERRED, 0) + counts.get(Status.NOT_ATTEMPTED, 0)
    retryable_failures = sum(
        n
        for name, n in types.items()
        if FailureType(name).retryable and name != FailureType.INVALID_INPUT
    )
    if halt is not None or left or retryable_failures or waiting:
        if not dry_run:
            return ExitCode.WORK_LEFT
        return ExitCode.FAILURES if rejects - waiting else ExitCode.OK
    permanent = sum(n for name, n in types.items() if not FailureType(name).retryable)
    if permanent or rejects - waiting:
        return ExitCode.FAILURES
    return ExitCode.OK
