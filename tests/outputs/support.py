"""Runs whose report the tests look at: hostile text, failures, rejects and 429s in one."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from bulktag.emulator import Faults
from tests.world import World

#: Chromium with the network off: every host resolves to nothing, every proxy is a closed
#: port on loopback, and the browser's own background requests are turned off.
OFFLINE = (
    "--proxy-server=127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pings",
)
#: A tag a browser would run if the page did not escape it.
HOSTILE_TAG = "<script>alert(1)</script>"
#: A file name that would close an attribute and add an element.
HOSTILE_FILE = '"><img src=x onerror=alert(2)>.csv'
UNKNOWN = "00000000-0000-4000-8000-0000000000{:02d}"


def hostile_run(make_world: Callable[..., World], *args: str) -> tuple[int, Path, World]:
    """A starter-plan run of 60 contacts: some unknown to the CRM, 5xx faults, three bad
    rows, the quota spent before the end; tags and file name hostile."""
    world = make_world(contacts=60, plan="starter", faults=Faults(fault_rate=0.1), seed=5)
    world.workspace_used(60)  # 40 calls left today: the last contacts are deferred
    rows = [(UNKNOWN.format(n), "ghost") for n in range(4)]
    rows += [(cid, f"vip,{HOSTILE_TAG}") for cid in world.contact_ids[:55]]
    rows += [("not-an-id", HOSTILE_TAG), ("", "orphan"), (world.contact_ids[58], "")]
    source = world.write_csv(HOSTILE_FILE, rows)
    code, run_dir = world.run(str(source), "--plan", "starter", *args)
    return code, run_dir, world


class _Tags(HTMLParser):
    """Every element and attribute of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser
