"""The whole command across nights, driven by a model (hypothesis' rule-based state machine).

Each example draws a job (named columns or not, long or wide cells, a prefix, added tags,
lower-casing, an output format, ``skip_existing``, the report on or off) and a small daily
quota, then chains what people do across simulated days, through the real ``bulktag``
command against the emulator on one virtual clock: a job's night, a night stopped by
SIGTERM, one killed (the call in flight applied or not), a dry run, ``--resume`` by hand,
a run by hand with the job's flags, a re-run of a failures file or a results file with the
first run's flags, ``--skip-existing``, ``report`` and ``history``, a day without a run,
the export growing.

The oracle knows nothing of bulktag: each contact's intended tags are the export's raw
tags with the job's case and prefix, and its added tags. After every step:

- the CRM holds no tag that was not intended;
- every exit code is one the step may give, and no step raises (no traceback);
- a dry run leaves the job's folder, state, carry-over, history and the quota store as
  they were;
- every finished run folder holds its report (unless the job turns it off);
- the job's own calls that add nothing it had not already applied are at most the calls
  that can be in flight at the kills and signals (``concurrency`` each);

and at the end, enough clean nights later, every intended tag is in the CRM and the last
night exits 0 or 1.

``make test`` runs a few examples, the same each time (derandomized); ``make stateful``
runs thousands, new ones each time (``BULKTAG_STATEFUL_EXAMPLES``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from bulktag.cli.commands import main
from bulktag.errors import ExitCode
from tests.world import Crash, World, new_world

EXAMPLES = int(os.environ.get("BULKTAG_STATEFUL_EXAMPLES", "8"))
STEPS = int(os.environ.get("BULKTAG_STATEFUL_STEPS", "12"))
#: The job's requests in flight at most: what a kill or a signal may leave unrecorded.
CONCURRENCY = 3
#: Contact IDs no contact has: LeadLex answers 404 (a permanent failure).
UNKNOWN = ("00000000-0000-4000-8000-00000000a001", "00000000-0000-4000-8000-00000000a002")
RAW_TAGS = ("Winter", "VIP", "newsletter", "Trade Show", "beta")
SENT_TAGS = "/tags"
SHRINK = "BULKTAG_STATEFUL_SHRINK"

#: What each step may exit with.
NIGHT = {ExitCode.OK, ExitCode.FAILURES, ExitCode.WORK_LEFT}
DRY = {ExitCode.OK, ExitCode.FAILURES}


@dataclass(frozen=True)
class Shape:
    """A job, as a person would write it."""

    named: bool  #: the export's columns are "LeadLex ID" and "Segments", named in [read]
    wide: bool  #: one row per contact, its tags in one cell; else one row per tag
    prefix: str
    added: tuple[str, ...]
    lower: bool
    fmt: str  #: the results and failures format
    skip_existing: bool
    report: bool

    def intended(self, raw: str) -> str:
        return self.prefix + (raw.lower() if self.lower else raw)

    def job_text(self) -> str:
        lines = [
            'inputs = ["export.csv"]',
            f'format = "{self.fmt}"',
            f"skip_existing = {str(self.skip_existing).lower()}",
            f"report = {str(self.report).lower()}",
            "[read]",
        ]
        if self.named:
            lines += ['id_column = "LeadLex ID"', 'tags_columns = ["Segments"]']
        lines += [
            "[tags]",
            f'case = "{"lower" if self.lower else "preserve"}"',
            f'prefix = "{self.prefix}"',
            "add = [" + ", ".join(f'"{t}"' for t in self.added) + "]",
            "[limits]",
            'plan = "starter"',
            f"concurrency = {CONCURRENCY}",
        ]
        return "\n".join(lines) + "\n"

    def flags(self) -> list[str]:
        """The job's settings as a person types them for a run by hand."""
        found = ["--format", self.fmt, "--tag-case", "lower" if self.lower else "preserve"]
        if self.named:
            found += ["--id-column", "LeadLex ID", "--tags-column", "Segments"]
        if self.prefix:
            found += ["--tag-prefix", self.prefix]
        for tag in self.added:
            found += ["--add-tag", tag]
        if not self.report:
            found.append("--no-report")
        return found


shapes = st.builds(
    Shape,
    named=st.booleans(),
    wide=st.booleans(),
    prefix=st.sampled_from(["", "seg-"]),
    added=st.sampled_from([(), ("imp",)]),
    lower=st.booleans(),
    fmt=st.sampled_from(["csv", "parquet", "xlsx", "ndjson"]),
    skip_existing=st.booleans(),
    report=st.booleans(),
)


@dataclass
class Calls:
    """What the emulator saw of the add-tags calls, and the kill or signal to deliver."""

    job_owned: bool = False  #: the command running is the job's (a night, its resume)
    applied: set[tuple[str, str]] = field(default_factory=set)  #: pairs the job applied
    wasted: int = 0  #: job calls that added nothing the job had not applied already
    allowance: int = 0  #: calls that may be in flight at kills and signals
    seen: int = 0  #: add-tags calls of the command running
    crash_at: int | None = None
    crash_applied: bool = False
    signal_at: int | None = None
    signalled: bool = False

    def before(self, request: httpx2.Request) -> None:
        if request.method != "POST" or not request.url.path.endswith(SENT_TAGS):
            return
        self.seen += 1
        if self.seen == self.signal_at and not self.signalled:
            self.signalled = True
            os.kill(os.getpid(), signal.SIGTERM)
        if self.seen == self.crash_at and not self.crash_applied:
            raise Crash

    def after(self, request: httpx2.Request, response: httpx2.Response) -> None:
        if request.method != "POST" or not request.url.path.endswith(SENT_TAGS):
            return
        if response.status_code == 200 and self.job_owned:
            contact = request.url.path.split("/")[-2]
            pairs = {(contact, t) for t in json.loads(request.content)["tags"]}
            replayed = response.headers.get("idempotency-replayed") == "true"
            if pairs <= self.applied and not replayed:
                self.wasted += 1
            self.applied |= pairs
        if self.seen == self.crash_at and self.crash_applied:
            raise Crash


class Nights(RuleBasedStateMachine):
    """See the module docstring."""

    world: World
    shape: Shape
    job: Path
    rows: list[tuple[str, str]]  #: the export, one (contact, raw tag) per pair
    calls: Calls
    folder: Path

    @initialize(
        shape=shapes,
        per_day=st.integers(min_value=5, max_value=15),
        contacts=st.integers(min_value=6, max_value=16),
        tagged=st.integers(min_value=0, max_value=3),
    )
    def setup(self, shape: Shape, per_day: int, contacts: int, tagged: int) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="bulktag-nights-"))
        self.world = new_world(self.folder, 24, plan="starter", per_day=per_day)
        self.shape = shape
        self.calls = Calls()
        self.world.hook, self.world.after = self.calls.before, self.calls.after
        ids = self.world.contact_ids
        self.rows = [
            (cid, RAW_TAGS[(i + j) % len(RAW_TAGS)])
            for i, cid in enumerate(ids[:contacts])
            for j in range(1 + i % 3)
        ]
        self.rows += [(UNKNOWN[0], "VIP")]
        for cid, raw in self.rows[:tagged]:  # already carried in the CRM (another tool)
            self.world.emulator.contacts[cid].tags.append(shape.intended(raw))
        self.before = {cid: set(self.world.tags_of(cid)) for cid in ids}
        self._write_export()
        self.job = self.world.write_job(shape.job_text())
        self.previous = signal.signal(signal.SIGTERM, self._missed)
        self.missed = 0

    def _missed(self, signum: int, frame: object) -> None:
        self.missed += 1  # a SIGTERM bulktag was not listening for (the test's own fault)

    def teardown(self) -> None:
        if not hasattr(self, "world"):
            return
        try:
            self._finish_the_backlog()
        finally:
            signal.signal(signal.SIGTERM, self.previous)
            shutil.rmtree(self.folder, ignore_errors=True)

    # -- the world ----------------------------------------------------------------------

    def _write_export(self) -> None:
        header = ("LeadLex ID", "Segments") if self.shape.named else ("contact_id", "tags")
        if self.shape.wide:
            cells: dict[str, list[str]] = {}
            for cid, raw in self.rows:
                cells.setdefault(cid, []).append(raw)
            lines = [(cid, ";".join(tags)) for cid, tags in cells.items()]
        else:
            lines = list(self.rows)
        self.world.write_csv("export.csv", lines, header=header)

    def _intended(self) -> dict[str, set[str]]:
        """Each contact's tags as the person meant them (no bulktag involved)."""
        meant: dict[str, set[str]] = {}
        for cid, raw in self.rows:
            meant.setdefault(cid, set()).update({self.shape.intended(raw), *self.shape.added})
        return meant

    def _command(self, argv: list[str], *, job_owned: bool) -> int:
        """The real command, one step; every add-tags call watched."""
        self.calls.job_owned, self.calls.seen = job_owned, 0
        url = [] if "--resume" in argv else ["--api-url", self.world_url]
        code = main([*argv, *url], runtime=self.world.runtime())
        assert code in {int(c) for c in ExitCode}, code
        return code

    @property
    def world_url(self) -> str:
        from tests.world import URL

        return URL

    def _night(self, *args: str) -> int:
        self.world.next_night()
        code = self._command(["run", "--job", str(self.job), *args], job_owned=True)
        assert code in NIGHT, code  # a valid, unchanged job never ends 65 or 78
        return code

    def _run_dirs(self) -> list[Path]:
        """Every run folder, oldest first: the job's and those of runs by hand."""
        found = sorted((self.folder / "job" / "runs").glob("*")) if self._ran() else []
        return found + sorted(self.folder.glob("hand*"))

    def _ran(self) -> bool:
        return (self.folder / "job" / "runs").is_dir()

    def _hand(self) -> Path:
        self.world.runs += 1
        return self.folder / f"hand{self.world.runs:03d}"

    # -- what people do -------------------------------------------------------------------

    @rule()
    def a_night(self) -> None:
        self._night()

    @rule()
    def a_night_with_skip_existing(self) -> None:
        self._night("--skip-existing")

    @rule(at=st.integers(min_value=1, max_value=4))
    def a_night_stopped_by_sigterm(self, at: int) -> None:
        self.world.handle_signals = True
        self.calls.signal_at, self.calls.signalled = at, False
        try:
            self._night()
        finally:
            self.world.handle_signals = False
            self.calls.allowance += CONCURRENCY if self.calls.signalled else 0
            self.calls.signal_at = None
        # A signal at the session's last call may reach the process once bulktag stopped
        # listening (trio hands an unconsumed signal back then; asyncio drops it): the run
        # has sent everything and goes on. One before the first call would be a bug:
        # tests/run/test_chains.py::test_a_sigterm_at_the_first_call_is_bulktags.
        if self.missed:
            event("a SIGTERM after the last call")
            self.missed = 0

    @rule(at=st.integers(min_value=1, max_value=4), applied=st.booleans())
    def a_night_killed(self, at: int, applied: bool) -> None:
        self.calls.crash_at, self.calls.crash_applied = at, applied
        try:
            self._night()
        except BaseException as exc:  # the kill, wrapped or not in an exception group
            if not (isinstance(exc, Crash) or _holds_crash(exc)):
                raise
            event("a night killed")
            self.calls.allowance += CONCURRENCY
        finally:
            self.calls.crash_at = None

    @rule()
    def a_dry_run(self) -> None:
        before = self.world.job_fingerprint() if self._ran() else None
        code = self._command(["run", "--job", str(self.job), "--dry-run"], job_owned=False)
        assert code in DRY, code
        if before is not None:
            assert self.world.job_fingerprint() == before

    @rule(data=st.data())
    def a_resume_by_hand(self, data: st.DataObject) -> None:
        every = self._run_dirs()
        if not every:
            return
        unfinished = [d for d in every if not (d / "summary.json").is_file()]
        run_dir = data.draw(st.sampled_from(unfinished or every))
        job_owned = run_dir.parent.name == "runs"
        event(
            f"resume by hand: {'a job run' if job_owned else 'a run by hand'}, "
            f"{'unfinished' if unfinished else 'finished'}"
        )
        code = self._command(["run", "--resume", str(run_dir)], job_owned=job_owned)
        assert code in NIGHT | {ExitCode.USAGE}, code
        if code == ExitCode.USAGE:  # nothing left to resume there: refused, unchanged
            assert (run_dir / "summary.json").is_file()

    @rule()
    def a_run_by_hand_with_the_jobs_flags(self) -> None:
        export = str(self.folder / "export.csv")
        code = self._command(
            ["run", export, *self.shape.flags(), "--out", str(self._hand())], job_owned=False
        )
        assert code in NIGHT, code

    @rule(data=st.data(), which=st.sampled_from(["failures", "results"]))
    def a_rerun_of_an_output_with_the_first_runs_flags(
        self, data: st.DataObject, which: str
    ) -> None:
        finished = [d for d in self._run_dirs() if (d / f"{which}.{self.shape.fmt}").is_file()]
        if not finished:
            return
        run_dir = data.draw(st.sampled_from(finished))
        source = str(run_dir / f"{which}.{self.shape.fmt}")
        argv = ["run", source, *self.shape.flags(), "--out", str(self._hand())]
        code = self._command(argv, job_owned=False)
        assert code in NIGHT, code

    @rule(data=st.data())
    def the_pages(self, data: st.DataObject) -> None:
        finished = [d for d in self._run_dirs() if (d / "summary.json").is_file()]
        if finished:
            run_dir = data.draw(st.sampled_from(finished))
            assert main(["report", str(run_dir)]) == ExitCode.OK
        code = main(["history", "--job", str(self.job)])
        assert code == (ExitCode.OK if (self.folder / "job" / "state.sqlite").is_file() else 65)

    @rule()
    def a_day_without_a_run(self) -> None:
        self.world.next_night()

    @rule(
        contacts=st.integers(min_value=0, max_value=4), tags=st.integers(min_value=0, max_value=4)
    )
    def the_export_grows(self, contacts: int, tags: int) -> None:
        listed = {cid for cid, _ in self.rows}
        fresh = [cid for cid in self.world.contact_ids if cid not in listed][:contacts]
        self.rows += [(cid, RAW_TAGS[len(self.rows) % len(RAW_TAGS)]) for cid in fresh]
        self.rows += [(cid, f"Extra {n}") for n, cid in enumerate(sorted(listed)[:tags])]
        self._write_export()

    # The interruptions, and what people do after one, twice as often as the rest (a
    # rule is drawn uniformly): the chains of issue 22 start there.
    another_night_killed = a_night_killed
    another_resume_by_hand = a_resume_by_hand
    another_dry_run = a_dry_run

    # -- what always holds ------------------------------------------------------------

    @invariant()
    def the_crm_holds_only_intended_tags(self) -> None:
        if not hasattr(self, "world"):
            return
        meant = self._intended()
        for cid in self.world.contact_ids:
            extra = set(self.world.tags_of(cid)) - meant.get(cid, set()) - self.before[cid]
            assert not extra, (cid, extra)

    @invariant()
    def every_finished_run_holds_its_report(self) -> None:
        if not hasattr(self, "world") or not self.shape.report:
            return
        for run_dir in self._run_dirs():
            if (run_dir / "summary.json").is_file():
                assert (run_dir / "report.html").is_file(), run_dir

    @invariant()
    def the_job_spends_no_call_on_what_it_applied(self) -> None:
        if hasattr(self, "world"):
            assert self.calls.wasted <= self.calls.allowance, (
                self.calls.wasted,
                self.calls.allowance,
            )

    def _finish_the_backlog(self) -> None:
        """Clean nights until the job has nothing left: every intended tag is there."""
        pairs = len(self.rows) + len(self.rows) * len(self.shape.added)
        nights = math.ceil(pairs / 6) + 4  # 6: the smallest daily quota drawn
        code = None
        for _night in range(nights):
            code = self._night()
            if code in (ExitCode.OK, ExitCode.FAILURES):
                break
        assert code in (ExitCode.OK, ExitCode.FAILURES), code
        known = set(self.world.contact_ids)
        for cid, tags in self._intended().items():
            if cid in known:
                assert tags <= set(self.world.tags_of(cid)), (cid, tags)


def _holds_crash(exc: BaseException) -> bool:
    return isinstance(exc, BaseExceptionGroup) and exc.subgroup(Crash) is not None


Nights.TestCase.settings = settings(
    max_examples=EXAMPLES,
    # BULKTAG_STATEFUL_SHRINK=0: report a failure as found, without minutes of shrinking
    phases=[p for p in Phase if p is not Phase.shrink or os.environ.get(SHRINK, "1") != "0"],
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=EXAMPLES <= 50,  # make test: the same examples every time
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_nights = Nights.TestCase
