"""Contacts by email, through the real command against the emulator: the directory read
through the export, the rules (trimmed, lower-cased, never a guess), the calls it costs,
a job across nights, and a failures re-run by ID.

The expected matches come from the emulator's contacts by a plain dictionary here, not
from bulktag."""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import polars as pl
import pytest

from bulktag.emulator import Contact
from bulktag.emulator.model import SHARED_EMAIL
from bulktag.errors import ExitCode
from tests.world import World, read_results


def _by_address(world: World) -> dict[str, list[str]]:
    """The oracle: each address (trimmed, lower-cased) and the contacts that have it."""
    found: dict[str, list[str]] = defaultdict(list)
    for contact in world.emulator.contacts.values():
        found[contact.email.strip().lower()].append(contact.id)
    return found


def _contact(world: World, index: int) -> Contact:
    return world.emulator.contacts[world.contact_ids[index]]


def _summary(run_dir: Path) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return summary


def _exports(world: World) -> int:
    """Export calls the emulator answered (its own count)."""
    return int(world.emulator.handled["GET /v1/contacts/export"])


def _booked(world: World) -> int:
    """The calls the user's quota store holds, read from its own rows (not LeadLex's
    header): every day's, every key's."""
    store = Path(world.environ["BULKTAG_STATE_DIR"]) / "quota.sqlite"
    if not store.exists():
        return 0
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COALESCE(SUM(calls), 0) FROM quota").fetchone()[0])
    finally:
        db.close()


def test_a_file_of_emails_only(make_world: Callable[..., World]) -> None:
    """Unknown, shared, mixed-case and malformed addresses: one export call, one add-tags
    call per matched person, every other row a reject saying why; results carry both the
    address given and the contact."""
    world = make_world(contacts=120, plan="org")
    first, mixed, shared = _contact(world, 0), _contact(world, 10), _contact(world, SHARED_EMAIL)
    assert mixed.email != mixed.email.lower()  # the emulator's case variant
    rows = [
        (first.email, "vip"),
        (f"  {first.email.upper()} ", "gold"),  # the same person, in capitals, padded
        (mixed.email.lower(), "x"),  # as lower case: the CRM holds it in mixed case
        (shared.email, "shared"),
        ("nobody@example.com", "y"),
        ("not an address", "z"),
        (_contact(world, 5).email, "a"),
    ]
    source = world.write_csv("people.csv", rows, header=("E-Mail-Adresse", "Schlagwörter"))
    code, run_dir = world.run(str(source), "--plan", "org")
    assert code == ExitCode.FAILURES  # rows rejected
    oracle = _by_address(world)
    assert len(oracle[shared.email.lower()]) == 2
    summary = _summary(run_dir)
    assert summary["calls"] == {"add_tags": 3, "export": 1, "total": 4}  # 1 page + 3 people
    assert summary["plan"]["by_email"] == {
        "addresses": 5,  # "not an address" is none
        "directory_contacts": 120,
        "export_calls": 1,
        "kept_since": None,
        "unknown": 1,
        "ambiguous": 1,
        "export_refused": 0,
        "matched": 3,
        "why": "read now: a run by hand keeps none",
        "waiting": 0,
    }
    results = read_results(run_dir / "results.csv")
    assert results.columns[:3] == ["contact_id", "email", "tags"]
    by_id = {r["contact_id"]: r for r in results.iter_rows(named=True)}
    assert set(by_id) == {first.id, mixed.id, _contact(world, 5).id}
    assert by_id[first.id]["email"] == first.email  # as the file first gave it
    assert by_id[first.id]["tags"] == "vip,gold"
    assert world.tags_of(first.id) == ["vip", "gold"]
    assert world.tags_of(mixed.id) == ["x"]
    assert all(world.tags_of(cid) == [] for cid in oracle[shared.email.lower()])
    rejects = read_results(run_dir / "rejects.csv")
    kinds = dict(zip(rejects["contact_id"], rejects["error_type"], strict=True))
    assert kinds == {
        shared.email: "ambiguous_email",
        "nobody@example.com": "unknown_email",
        "not an address": "invalid_input",
    }
    reason = rejects.filter(rejects["contact_id"] == shared.email)["reason"].item()
    assert all(cid in reason for cid in oracle[shared.email.lower()])
    assert (
        rejects.filter(rejects["contact_id"] == "not an address")["reason"]
        .item()
        .startswith("not an email address")
    )


def test_a_file_with_ids_and_emails_uses_the_ids(make_world: Callable[..., World]) -> None:
    """Both columns: by ID, no export; --match email: by the addresses, one export."""
    world = make_world(contacts=30, plan="org")
    rows = [(_contact(world, i).id, _contact(world, i + 1).email, "t") for i in range(3)]
    source = world.write_csv("both.csv", rows, header=("contact_id", "email", "tags"))
    code, run_dir = world.run(str(source), "--plan", "org")
    assert code == ExitCode.OK
    assert _summary(run_dir)["calls"] == {"add_tags": 3, "total": 3}
    assert [world.tags_of(_contact(world, i).id) for i in range(4)] == [["t"]] * 3 + [[]]
    code, run_dir = world.run(
        str(source), "--plan", "org", "--match", "email", "--tags-column", "tags"
    )
    assert code == ExitCode.OK
    assert _summary(run_dir)["calls"] == {"add_tags": 3, "export": 1, "total": 4}
    assert world.tags_of(_contact(world, 3).id) == ["t"]


def test_an_id_file_and_an_email_file_in_one_run(make_world: Callable[..., World]) -> None:
    """A person in both files is one contact: one call with the tags of both."""
    world = make_world(contacts=30, plan="org")
    ids = world.write_csv("ids.csv", [(_contact(world, 1).id, "from-ids")])
    emails = world.write_csv(
        "emails.csv", [(_contact(world, 1).email, "from-emails")], header=("email", "tags")
    )
    code, run_dir = world.run(str(ids), str(emails), "--plan", "org")
    assert code == ExitCode.OK
    assert _summary(run_dir)["calls"] == {"add_tags": 1, "export": 1, "total": 2}
    assert world.tags_of(_contact(world, 1).id) == ["from-ids", "from-emails"]


def test_a_workspace_of_120_000_contacts_takes_three_export_pages(
    make_world: Callable[..., World],
) -> None:
    """50,000 contacts an export: 3 pages, paged by creation date; the last page's
    contacts are found as the first's."""
    world = make_world(contacts=120_000, plan="org")
    picked = [0, 49_997, 50_000, 99_997, 100_000, 119_997]  # none shares its address
    rows = [(_contact(world, i).email, "deep") for i in picked]
    source = world.write_csv("far.csv", rows, header=("Work Email", "tags"))
    code, run_dir = world.run(str(source), "--plan", "org")
    assert code == ExitCode.OK
    assert _summary(run_dir)["calls"] == {"add_tags": 6, "export": 3, "total": 9}
    assert _exports(world) == 3
    assert all(world.tags_of(_contact(world, i).id) == ["deep"] for i in picked)


def test_the_hourly_export_limit_is_waited_for_within_max_wait(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """One export an hour and three pages: --max-wait 900 stops before sending (75,
    nothing sent); --max-wait 7200 waits twice for the limit (virtual time) and sends."""
    world = make_world(contacts=120_000, plan="org", export_per_hour=1)
    source = world.write_csv(
        "far.csv", [(_contact(world, 100_000).email, "late")], header=("email", "tags")
    )
    code, run_dir = world.run(str(source), "--plan", "org")
    assert code == ExitCode.WORK_LEFT
    assert world.tags_of(_contact(world, 100_000).id) == []
    # the page LeadLex answered before the limit stopped the read is booked, the 429 not
    first_night = world.emulator.workspace("default").used_today
    assert _booked(world) == first_night == 1
    world.next_night()
    capsys.readouterr()
    code, run_dir = world.run(
        str(source),
        "--plan",
        "org",
        "--max-wait",
        "7200",
        "--progress",
        "--log-format",
        "text",
        "-v",
    )
    assert code == ExitCode.OK
    said = capsys.readouterr().err
    assert "waiting" in said
    assert "s for the export limit" in said  # on the progress bar
    assert world.tags_of(_contact(world, 100_000).id) == ["late"]
    assert _summary(run_dir)["calls"]["export"] == 5  # 3 pages, two of them refused first
    assert "10 an hour" not in said  # the workspace's limit is 1: no number is made up
    # the bound: 120,000 // 50,000 + 1 pages, one add-tags call; the 429s apart
    assert (
        "by email: 3 export calls (2 refused 429s apart) for 120,000 contacts in the "
        "directory, 1 add-tags call for 1 matched contact: the least this input allows"
    ) in said
    # booked: what LeadLex counted (its pages and the add-tags call), not its refusals
    assert _booked(world) - first_night == world.emulator.workspace("default").used_today == 4


def test_a_directory_longer_than_a_nights_exports_goes_on_the_next_night(
    make_world: Callable[..., World],
) -> None:
    """One export an hour, three pages, the job's --max-wait of 900 s: each night reads the
    page the limit allows, keeps it and exits 75 sending nothing; the third night has the
    whole directory and sends. Never a page read twice."""
    world = make_world(contacts=120_000, plan="org", export_per_hour=1)
    late = _contact(world, 110_000)
    world.write_csv("export.csv", [(late.email, "seg")], header=("email", "tags"))
    job = world.write_job('inputs = ["export.csv"]\n[limits]\nplan = "org"\n')
    kept = []
    for _night in range(3):
        code, _ = world.run_job(job)
        about = json.loads((world.folder / "job" / "directory.json").read_text())
        kept.append((code, about["complete"], _exports(world)))
        world.next_night()
    # the exports LeadLex answered (the limit's 429s never reach it): one page a night
    assert kept == [
        (ExitCode.WORK_LEFT, False, 1),
        (ExitCode.WORK_LEFT, False, 2),
        (ExitCode.OK, True, 3),  # the directory is whole: sent
    ]
    assert world.tags_of(late.id) == ["seg"]


def test_a_job_keeps_its_directory_across_nights(make_world: Callable[..., World]) -> None:
    """Night 1 reads the directory; night 2 uses the kept one (no export); an address new
    to the CRM reads it again, once; a directory older than directory_days is read again."""
    world = make_world(contacts=60, plan="org")
    export = world.folder / "export.csv"
    rows = [(_contact(world, i).email, "seg") for i in range(3)]
    world.write_csv("export.csv", rows, header=("email", "tags"))
    job = world.write_job('inputs = ["export.csv"]\n[limits]\nplan = "org"\n')
    code, run_dir = world.run_job(job)
    assert code == ExitCode.OK
    assert run_dir is not None
    assert _summary(run_dir)["calls"]["export"] == 1
    assert (world.folder / "job" / "directory.parquet").is_file()

    world.write_csv(
        "export.csv", [*rows, (_contact(world, 3).email, "seg")], header=("email", "tags")
    )
    world.clock.jump(3600)
    code, run_dir = world.run_job(job)
    assert code == ExitCode.OK
    assert run_dir is not None
    assert "export" not in _summary(run_dir)["calls"]  # the kept directory
    assert _summary(run_dir)["plan"]["by_email"]["kept_since"] is not None
    assert world.tags_of(_contact(world, 3).id) == ["seg"]

    newcomer = _person(world, "nina.new@example.com", 99)  # new to the CRM since night 2
    with export.open("a", encoding="utf-8") as handle:
        handle.write("Nina.New@example.com,seg\n")
    code, run_dir = world.run_job(job)
    assert code == ExitCode.OK
    assert run_dir is not None
    assert _summary(run_dir)["calls"]["export"] == 1  # read again, once
    assert world.tags_of(newcomer.id) == ["seg"]

    world.next_night()
    world.next_night()  # two days on: older than directory_days = 1
    code, run_dir = world.run_job(job)
    assert code == ExitCode.OK
    assert run_dir is not None
    assert _summary(run_dir)["calls"]["export"] == 1


def test_a_failures_rerun_goes_by_id(make_world: Callable[..., World]) -> None:
    """A run that the quota stops leaves failures with the address and the contact; the
    re-run sends them by ID, with no export."""
    world = make_world(contacts=60, plan="starter")
    world.workspace_used(100 - 3)  # three calls left today: the export and two contacts
    rows = [(_contact(world, i).email, "late") for i in range(5)]
    source = world.write_csv("people.csv", rows, header=("email", "tags"))
    code, run_dir = world.run(str(source), "--plan", "starter")
    assert code == ExitCode.WORK_LEFT
    failures = read_results(run_dir / "failures.csv")
    assert failures.columns[:3] == ["contact_id", "email", "tags"]
    assert failures.height == 3
    assert set(failures["email"]) == {_contact(world, i).email for i in (2, 3, 4)}
    world.next_night()
    code, rerun = world.run(str(run_dir / "failures.csv"), "--plan", "starter")
    assert code == ExitCode.OK
    assert _summary(rerun)["calls"] == {"add_tags": 3, "total": 3}
    assert all(world.tags_of(_contact(world, i).id) == ["late"] for i in range(5))


def test_a_dry_run_reads_the_directory_and_sends_nothing(
    make_world: Callable[..., World],
) -> None:
    """A dry run by hand: the directory read (its export calls said), no tag written."""
    world = make_world(contacts=30, plan="org")
    source = world.write_csv("p.csv", [(_contact(world, 2).email, "d")], header=("email", "tags"))
    code, run_dir = world.run(str(source), "--plan", "org", "--dry-run")
    assert code == ExitCode.OK
    assert _summary(run_dir)["plan"]["by_email"]["export_calls"] == 1
    assert world.tags_of(_contact(world, 2).id) == []
    assert world.handled_tag_calls() == 0


def test_without_read_permission_matching_by_email_stops(
    make_world: Callable[..., World],
) -> None:
    """A key that may write but not read cannot read the directory: 78, nothing sent."""
    from bulktag.emulator import Key
    from tests.constants import KEY

    world = make_world(contacts=30, plan="org", keys=[Key(KEY, "default", frozenset({"write"}))])
    source = world.write_csv("p.csv", [(_contact(world, 2).email, "d")], header=("email", "tags"))
    code, _ = world.run(str(source), "--plan", "org")
    assert code == ExitCode.CONFIG
    assert world.handled_tag_calls() == 0


def test_the_emulator_export_honours_fields_and_windows(make_world: Callable[..., World]) -> None:
    """fields=id,email gives those columns; created_after and created_before window it."""
    world = make_world(contacts=10, plan="org")
    transport = world.runtime().transport
    assert transport is not None
    from tests.constants import KEY
    from tests.world import URL

    async def ask(params: dict[str, str]) -> str:
        async with httpx2.AsyncClient(
            transport=transport, base_url=URL, headers={"Authorization": f"Bearer {KEY}"}
        ) as api:
            answer = await api.get(
                "/v1/contacts/export", params=params, headers={"Accept": "text/csv"}
            )
            assert answer.status_code == 200, answer.text
            return answer.text

    import trio

    text = trio.run(ask, {"fields": "id,email"})
    lines = text.strip().splitlines()
    assert lines[0] == "id,email"
    assert len(lines) == 11
    created = sorted(c.created_at for c in world.emulator.contacts.values())
    from bulktag.emulator.model import iso_time

    windowed = trio.run(
        ask,
        {
            "fields": "id",
            "created_after": iso_time(created[2]),
            "created_before": iso_time(created[6]),
        },
    )
    assert len(windowed.strip().splitlines()) == 1 + 3  # the 4th, 5th and 6th


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--match", "email", "--id-column", "id"], "name the email column with --email-column"),
        (["--match", "id", "--email-column", "mail"], "give one of them"),
    ],
)
def test_contradicting_flags_are_a_usage_error(
    world: World, flags: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = world.write_csv("p.csv", [("a@example.com", "x")], header=("email", "tags"))
    code, _ = world.run(str(source), *flags)
    assert code == ExitCode.USAGE
    assert words in capsys.readouterr().err
    assert world.handled_tag_calls() == 0


def test_validate_prints_the_cost_both_ways_and_makes_no_call(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """validate reads no directory: each address stands for a contact (two spellings of
    one are one), what is no address is a reject, and the cost is said both ways."""
    from bulktag.cli.commands import main

    rows = [("Ann@Example.com", "a"), ("ann@example.com ", "b"), ("bob@example.com", "c")]
    source = world.write_csv("p.csv", [*rows, ("nope", "d")], header=("email", "tags"))
    code = main(["validate", str(source)], runtime=world.runtime())
    out = capsys.readouterr().out
    assert code == ExitCode.FAILURES  # the row that is no address
    assert "email column 'email'" in out
    assert (
        "matching by email: 2 distinct addresses, the workspace's directory costs 1 export "
        "call per 50,000 contacts (validate makes no call, so the directory's size is not "
        "known here; LeadLex also limits exports an hour), against 2 calls one address at a "
        "time"
    ) in out
    assert "quota: 2 add-tags calls and the directory's export calls of" in out
    assert "contacts: 2 " in out
    assert "not an email address" in out
    assert world.emulator.handled == {} or sum(world.emulator.handled.values()) == 0


def test_the_directorys_calls_are_booked_in_the_quota_store(
    make_world: Callable[..., World],
) -> None:
    """The export calls count against the day's quota like any other: the user's store
    counts them in its own rows (3 pages and the add-tags call, as LeadLex counted them),
    and what is left is LeadLex's word."""
    from bulktag.config import ApiKey
    from bulktag.state.quota import QuotaBook
    from tests.constants import KEY
    from tests.world import URL

    world = make_world(contacts=120_000, plan="org")
    source = world.write_csv("p.csv", [(_contact(world, 7).email, "q")], header=("email", "tags"))
    code, _ = world.run(str(source), "--plan", "org")
    assert code == ExitCode.OK
    assert _booked(world) == world.emulator.workspace("default").used_today == 3 + 1
    book = QuotaBook(Path(world.environ["BULKTAG_STATE_DIR"]), ApiKey(KEY), URL)
    assert book.remaining(world.runtime().clock.wall()) == 10_000 - 3 - 1


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "emails"


def _person(world: World, email: str, number: int) -> Contact:
    contact = Contact(
        id=f"5e1c2a3e-0000-4000-8000-{number:012d}",
        workspace="default",
        full_name=f"Person {number}",
        email=email,
        phone="",
        job_title="",
        company_name="",
        linkedin_url="",
        tags=[],
        created_at=world.emulator.clock.now() - 1_000 + number,
    )
    world.emulator.add_contact(contact)
    return contact


@pytest.mark.parametrize(
    "name",
    ["registrants_libreoffice.xlsx", "registrants_gnumeric.csv", "registrants.csv"],
)
def test_email_lists_saved_by_real_programs(make_world: Callable[..., World], name: str) -> None:
    """A registrants list saved by LibreOffice Calc (XLSX) and by gnumeric (ssconvert, CSV
    with a padded cell quoted): the matches, worked out by hand from the file and the
    contacts set here, are exactly these, whatever program saved it."""
    world = make_world(contacts=0, plan="org")
    ann = _person(world, "ann.lee@example.com", 1)
    bob = _person(world, "bob.lee+news@example.org", 2)
    shared = [_person(world, "Shared@example.com", 3), _person(world, "shared@example.com", 4)]
    juergen = _person(world, "jürgen.müller@example.de", 5)
    copy = world.folder / name
    copy.write_bytes((FIXTURES / name).read_bytes())
    code, run_dir = world.run(str(copy), "--plan", "org")
    assert code == ExitCode.FAILURES  # three rows rejected
    assert world.tags_of(ann.id) == ["webinar", "follow-up"]  # two rows, one call
    assert world.tags_of(bob.id) == ["webinar", "vip"]
    assert world.tags_of(juergen.id) == ["webinar"]
    assert [world.tags_of(c.id) for c in shared] == [[], []]
    assert _summary(run_dir)["calls"] == {"add_tags": 3, "export": 1, "total": 4}
    rejects = (
        pl.read_excel(run_dir / "rejects.xlsx", infer_schema_length=0)
        if name.endswith("xlsx")
        else read_results(run_dir / "rejects.csv")
    )
    kinds = dict(zip(rejects["contact_id"], rejects["error_type"], strict=True))
    assert kinds == {
        "BOB.LEE@example.org": "unknown_email",  # the +news and the dot are kept
        "shared@example.com": "ambiguous_email",
        "not-an-address": "invalid_input",
    }


def test_an_email_job_through_a_chain(make_world: Callable[..., World]) -> None:
    """A job matching by email, with a prefix and lower-casing: night 1 killed after 3
    calls, a dry run, a damaged kept directory, the next nights, and a run by hand whose
    failures are re-run with its first flags. Each contact ends with exactly the tags
    meant (worked out here: the prefix once, lower case), none other."""
    world = make_world(contacts=60, plan="org")
    people = [_contact(world, i) for i in range(8)]
    world.write_csv("export.csv", [(p.email.upper(), "Winter") for p in people], ("email", "tags"))
    job = world.write_job(
        'inputs = ["export.csv"]\n[tags]\nprefix = "seg-"\ncase = "lower"\n[limits]\nplan = "org"\n'
    )
    world.crash_after(3)
    world.crashing("--job", str(job))
    before = world.job_fingerprint()
    code, _ = world.run_job(job, "--dry-run")
    assert code == ExitCode.OK
    assert world.job_fingerprint() == before  # a dry run changes nothing of the job
    world.next_night()
    code, _ = world.run_job(job)  # the interrupted night is finished first
    assert code == ExitCode.OK
    assert all(world.tags_of(p.id) == ["seg-winter"] for p in people)
    (world.folder / "job" / "directory.parquet").write_bytes(b"not parquet")  # damaged
    late = _contact(world, 20)
    with (world.folder / "export.csv").open("a", encoding="utf-8") as handle:
        handle.write(f"{late.email},Winter\n")
    world.next_night()
    code, run_dir = world.run_job(job)
    assert code == ExitCode.OK
    assert run_dir is not None
    assert _summary(run_dir)["calls"] == {"add_tags": 1, "export": 1, "total": 2}  # read again
    assert world.tags_of(late.id) == ["seg-winter"]

    by_hand = [_contact(world, i) for i in range(30, 35)]
    source = world.write_csv("p.csv", [(p.email, "Promo") for p in by_hand], ("email", "tags"))
    world.workspace_used(10_000 - 3)  # the export and two contacts today
    code, first = world.run(str(source), "--plan", "org", "--tag-prefix", "crm-")
    assert code == ExitCode.WORK_LEFT
    world.next_night()
    code, _ = world.run(str(first / "failures.csv"), "--plan", "org", "--tag-prefix", "crm-")
    assert code == ExitCode.OK
    assert all(world.tags_of(p.id) == ["crm-Promo"] for p in by_hand)
    touched = {p.id for p in [*people, late, *by_hand]}
    assert all(not c.tags for c in world.emulator.contacts.values() if c.id not in touched)


def test_a_cell_that_is_no_address_is_a_reject_even_when_a_contact_has_it(
    make_world: Callable[..., World],
) -> None:
    """A contact whose stored email is the junk ``n/a``: the cell ``N/A`` is no address, a
    reject (invalid_input), and that contact is never tagged from it."""
    world = make_world(contacts=5, plan="org")
    junk = _person(world, "n/a", 7)
    real = _contact(world, 1)
    source = world.write_csv(
        "junk_in.csv", [(real.email, "a"), ("N/A", "b")], header=("email", "tags")
    )
    code, run_dir = world.run(str(source), "--plan", "org")
    assert code == ExitCode.FAILURES  # the rejected row
    assert world.tags_of(junk.id) == []
    assert world.tags_of(real.id) == ["a"]
    rejects = read_results(run_dir / "rejects.csv")
    assert dict(zip(rejects["contact_id"], rejects["error_type"], strict=True)) == {
        "N/A": "invalid_input"
    }
    assert _summary(run_dir)["plan"]["by_email"]["addresses"] == 1


def test_a_cell_that_is_no_address_never_reads_the_kept_directory_again(
    make_world: Callable[..., World],
) -> None:
    """A job whose input holds ``n/a`` runs three times in an hour: one export (the
    first run's); the junk cell is not an address the kept directory lacks."""
    world = make_world(contacts=30, plan="org")
    rows = [("n/a", "e"), (_contact(world, 0).email, "e")]
    job = world.write_job('inputs = ["export.csv"]\n[limits]\nplan = "org"\n')
    for run in range(3):
        rows.append((_contact(world, run + 1).email, "e"))  # a new night's file
        world.write_csv("export.csv", rows, header=("email", "tags"))
        code, _ = world.run_job(job)
        assert code == ExitCode.FAILURES  # the n/a row, rejected
        world.clock.jump(600)
    assert _exports(world) == 1
    assert all(world.tags_of(_contact(world, i).id) == ["e"] for i in range(4))


def test_export_calls_are_booked_when_the_read_stops_on_a_403(
    make_world: Callable[..., World],
) -> None:
    """A key without Read: the export's 403 is a call LeadLex counts (it reached it), and
    the quota store books it although the run stops (78)."""
    from bulktag.emulator import Key
    from tests.constants import KEY

    world = make_world(contacts=30, plan="org", keys=[Key(KEY, "default", frozenset({"write"}))])
    source = world.write_csv("p.csv", [(_contact(world, 2).email, "d")], header=("email", "tags"))
    code, _ = world.run(str(source), "--plan", "org")
    assert code == ExitCode.CONFIG
    assert _booked(world) == world.emulator.workspace("default").used_today == 1


def test_a_dry_runs_export_calls_are_said_and_not_booked(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """A dry run changes nothing outside its folder, the quota store included (DESIGN.md):
    its export call is said before it is made, and not booked; the next run's first
    answer tells the store what is left."""
    world = make_world(contacts=30, plan="org")
    source = world.write_csv("p.csv", [(_contact(world, 2).email, "d")], header=("email", "tags"))
    code, _ = world.run(str(source), "--plan", "org", "--dry-run", "--log-format", "text", "-v")
    assert code == ExitCode.OK
    assert "the workspace's directory costs 1 export call" in capsys.readouterr().err
    assert world.handled_tag_calls() == 0
    assert world.emulator.workspace("default").used_today == 1
    assert _booked(world) == 0
    code, _ = world.run(str(source), "--plan", "org")
    assert code == ExitCode.OK
    assert world.tags_of(_contact(world, 2).id) == ["d"]
    assert _booked(world) == 2  # the night's export and add-tags call


def test_a_short_wait_for_the_export_limit_is_waited_for(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """One export an hour, the next run 3,550 s later: the limit asks for less than a
    minute, which --max-wait 900 allows; the run waits and sends. No message makes up the
    limit's number (the workspace's is 1, not LeadLex's documented 10)."""
    world = make_world(contacts=30, plan="org", export_per_hour=1)
    first = world.write_csv("a.csv", [(_contact(world, 1).email, "a")], header=("email", "tags"))
    code, _ = world.run(str(first), "--plan", "org")
    assert code == ExitCode.OK
    world.clock.jump(3_550)
    second = world.write_csv("b.csv", [(_contact(world, 2).email, "b")], header=("email", "tags"))
    capsys.readouterr()
    code, _ = world.run(str(second), "--plan", "org", "--max-wait", "900", "--log-format", "text")
    said = capsys.readouterr().err
    assert code == ExitCode.OK
    assert world.tags_of(_contact(world, 2).id) == ["b"]
    assert "LeadLex's export limit: waiting" in said
    assert "10 an hour" not in said
    assert "10 calls an hour" not in said


def test_the_export_limit_past_max_wait_is_told_without_a_made_up_number(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """Two pages, one export an hour: the run stops before sending (75), saying the hourly
    export limit, not "10 calls an hour"."""
    world = make_world(contacts=60_000, plan="org", export_per_hour=1)
    source = world.write_csv("p.csv", [(_contact(world, 1).email, "x")], header=("email", "tags"))
    capsys.readouterr()
    code, _ = world.run(str(source), "--plan", "org", "--log-format", "text")
    said = capsys.readouterr().err
    assert code == ExitCode.WORK_LEFT
    assert "hourly export limit" in said
    assert "10 calls an hour" not in said
    assert "10 an hour" not in said
    assert _booked(world) == world.emulator.workspace("default").used_today == 1


def test_the_run_says_what_the_directory_costs(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """The plan's line, in the issue's words, with the calls this run makes: one page read
    now by hand; none from a job's kept directory, saying why; one address is singular.
    The quota line counts the export call; the closing line holds the calls against the
    bound."""
    world = make_world(contacts=30, plan="org")
    contacts = len(world.emulator.contacts)
    pages = contacts // 50_000 + 1
    rows = [(_contact(world, 0).email, "a"), (_contact(world, 1).email.upper(), "b")]
    source = world.write_csv("p.csv", rows, header=("email", "tags"))
    capsys.readouterr()
    code, _ = world.run(str(source), "--plan", "org", "--log-format", "text", "-v")
    said = capsys.readouterr().err
    assert code == ExitCode.OK
    assert (
        f"matching by email: 2 distinct addresses, the workspace's directory costs "
        f"{pages} export call ({contacts:,} contacts, read now: a run by hand keeps none), "
        "against 2 calls one address at a time"
    ) in said
    assert "quota: 3 calls (2 add-tags, 1 export) of the org plan's 10,000 a day" in said
    assert (
        f"by email: {pages} export call for {contacts:,} contacts in the directory, "
        "2 add-tags calls for 2 matched contacts: the least this input allows"
    ) in said

    job = world.write_job('inputs = ["export.csv"]\n[limits]\nplan = "org"\n')
    world.write_csv("export.csv", rows[:1], header=("email", "tags"))
    code, _ = world.run_job(job)
    assert code == ExitCode.OK
    world.clock.jump(7_200)
    world.write_csv("export.csv", [(_contact(world, 3).email, "c")], header=("email", "tags"))
    capsys.readouterr()
    code, _ = world.run_job(job, "--log-format", "text", "-v")
    said = capsys.readouterr().err
    assert code == ExitCode.OK
    assert (
        "matching by email: 1 distinct address, the workspace's directory costs 0 export "
        f"calls ({contacts:,} contacts, kept by the job, read 2.0 h ago), against 1 call one "
        "address at a time"
    ) in said
    assert (
        f"by email: 0 export calls for {contacts:,} contacts in the directory, 1 add-tags "
        "call for 1 matched contact: the least this input allows"
    ) in said


def test_email_column_names_the_column(make_world: Callable[..., World]) -> None:
    """Two address columns: by alias the first (``Email``); --email-column the other."""
    world = make_world(contacts=30, plan="org")
    rows = [(_contact(world, i).email, _contact(world, i + 10).email, "t") for i in range(3)]
    source = world.write_csv("two.csv", rows, header=("Email", "Backup", "tags"))
    code, _ = world.run(str(source), "--plan", "org", "--email-column", "Backup")
    assert code == ExitCode.OK
    assert [world.tags_of(_contact(world, i + 10).id) for i in range(3)] == [["t"]] * 3
    assert [world.tags_of(_contact(world, i).id) for i in range(3)] == [[]] * 3


def test_the_job_files_match_and_email_column(make_world: Callable[..., World]) -> None:
    """A file with IDs and two address columns: a job goes by ID; with ``[read] match =
    "email"`` and ``email_column``, by that column's addresses."""
    world = make_world(contacts=40, plan="org")
    rows = [
        (_contact(world, i).id, _contact(world, i + 10).email, _contact(world, i + 20).email, "t")
        for i in range(3)
    ]
    world.write_csv("both.csv", rows, header=("contact_id", "email", "Mail", "tags"))
    settings = 'inputs = ["both.csv"]\n[limits]\nplan = "org"\n'
    reading = '[read]\nmatch = "email"\nemail_column = "Mail"\ntags_columns = ["tags"]\n'
    by_id = world.write_job(settings, "by_id.toml")
    code, _ = world.run_job(by_id)
    assert code == ExitCode.OK
    assert _exports(world) == 0
    by_email = world.folder / "by_email.toml"  # a job of its own (its own folder)
    by_email.write_text(f'out = "other"\n{settings}{reading}', encoding="utf-8")
    code, _ = world.run_job(by_email)
    assert code == ExitCode.OK
    assert _exports(world) == 1
    tagged = [world.tags_of(_contact(world, i).id) for i in range(30)]
    expected = [["t"] if i % 10 < 3 and i // 10 in (0, 2) else [] for i in range(30)]
    assert tagged == expected


def test_an_email_column_is_found_by_its_content(make_world: Callable[..., World]) -> None:
    """A header no alias names (``Kontakt``), a column of addresses: matched by email."""
    world = make_world(contacts=30, plan="org")
    rows = [(f"Person {i}", _contact(world, i).email, "k") for i in range(4)]
    source = world.write_csv("kontakte.csv", rows, header=("Name", "Kontakt", "tags"))
    code, run_dir = world.run(str(source), "--plan", "org")
    assert code == ExitCode.OK
    assert [world.tags_of(_contact(world, i).id) for i in range(5)] == [["k"]] * 4 + [[]]
    assert _summary(run_dir)["plan"]["inputs"][0]["id_column"] == "Kontakt"


def test_directory_days_sets_the_kept_directorys_age(make_world: Callable[..., World]) -> None:
    """``[read] directory_days = 0.5``: 11 hours on, the kept directory is used; 13 hours
    after it was read, it is read again."""
    world = make_world(contacts=30, plan="org")
    job = world.write_job(
        'inputs = ["export.csv"]\n[read]\ndirectory_days = 0.5\n[limits]\nplan = "org"\n'
    )
    exports = []
    for night, hours in enumerate((0, 11, 2)):  # read at 0 h; 11 h on; 13 h on
        world.clock.jump(hours * 3_600)
        world.write_csv("export.csv", [(_contact(world, night).email, "d")], ("email", "tags"))
        code, _ = world.run_job(job)
        assert code == ExitCode.OK
        exports.append(_exports(world))
    assert exports == [1, 1, 2]
    assert all(world.tags_of(_contact(world, i).id) == ["d"] for i in range(3))


def test_an_id_file_goes_on_while_the_email_rows_wait(
    make_world: Callable[..., World], capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory too long for tonight's exports defers its rows, as the quota defers
    contacts: the ID file of the same run is sent; each row matched by email is a reject
    ``rate_limited`` saying why and how it goes on (a cell that is no address is still
    told so); the run folder and summary.json are written; exit 75; the advice's command
    then sends them. Before: the whole run stopped, no folder, the ID contact unsent."""
    world = make_world(contacts=60_000, plan="org", export_per_hour=1)
    by_id, by_email = _contact(world, 5), _contact(world, 1)
    ids = world.write_csv("ids.csv", [(by_id.id, "from-ids")], header=("contact_id", "tags"))
    emails = world.write_csv(
        "people.csv", [(by_email.email, "from-emails"), ("N/A", "x")], header=("email", "tags")
    )
    capsys.readouterr()
    code, run_dir = world.run(str(ids), str(emails), "--plan", "org", "--log-format", "text")
    said = capsys.readouterr().err
    assert code == ExitCode.WORK_LEFT
    assert world.tags_of(by_id.id) == ["from-ids"]
    assert world.tags_of(by_email.id) == []
    summary = _summary(run_dir)
    assert summary["exit_code"] == ExitCode.WORK_LEFT
    assert summary["contacts"]["ok"] == 1
    rejects = read_results(run_dir / "rejects.csv")
    assert dict(zip(rejects["contact_id"], rejects["error_type"], strict=True)) == {
        by_email.email: "rate_limited",
        "N/A": "invalid_input",
    }
    waits = rejects.filter(pl.col("error_type") == "rate_limited")["reason"][0]
    assert "hourly export limit" in waits
    assert "this row waits for it" in waits
    assert "rows matched by email wait for it" in said
    advice = f"next: bulktag run {emails} --max-wait 3600"
    assert advice in said
    assert "by email: 1 export call read 50,000 contacts of the directory" in said
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "1 row matched by email waits for the workspace" in page
    assert f"bulktag run {emails} --max-wait 3600" in page
    assert "1 input row could not be used" in page  # N/A only: it is a row to fix

    world.clock.jump(3_600)
    code, again = world.run(str(emails), "--plan", "org", "--max-wait", "3600")
    assert code == ExitCode.FAILURES  # the row that is no address, for good
    assert _summary(again)["calls"]["add_tags"] == 1
    assert world.tags_of(by_email.id) == ["from-emails"]
    assert world.tags_of(by_id.id) == ["from-ids"]


def test_a_jobs_id_rows_go_on_while_its_email_rows_wait(
    make_world: Callable[..., World],
) -> None:
    """A job with an ID export and an email export, a directory of three nights' exports:
    its ID contact is sent the first night; the email rows wait, night after night, until
    the directory is whole; then they are sent. A dry run after each night leaves the kept
    directory as it was. Each contact tagged once, one call each."""
    world = make_world(contacts=120_000, plan="org", export_per_hour=1)
    by_id, late = _contact(world, 7), _contact(world, 110_000)
    world.write_csv("ids.csv", [(by_id.id, "seg")], header=("contact_id", "tags"))
    world.write_csv("people.csv", [(late.email, "seg")], header=("email", "tags"))
    job = world.write_job('inputs = ["ids.csv", "people.csv"]\n[limits]\nplan = "org"\n')
    codes = []
    for _night in range(3):
        code, run_dir = world.run_job(job)
        assert run_dir is not None
        codes.append((code, world.tags_of(by_id.id), world.tags_of(late.id)))
        kept = (world.folder / "job" / "directory.json").read_bytes()
        # a dry run between nights: its email rows wait too, it changes nothing of the job
        assert world.run_job(job, "--dry-run")[0] == ExitCode.OK
        assert (world.folder / "job" / "directory.json").read_bytes() == kept
        world.next_night()
    assert codes == [
        (ExitCode.WORK_LEFT, ["seg"], []),
        (ExitCode.WORK_LEFT, ["seg"], []),
        (ExitCode.OK, ["seg"], ["seg"]),
    ]
    assert world.handled_tag_calls() == 2
