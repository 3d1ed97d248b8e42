"""Mistakes on the command line, each answered with what fixes it, and never with a secret.

- A key given as an option (``--api-key``, ``--key``, ``--token`` ...) is refused
  without being repeated: keys come from ``LEADLEX_API_KEY`` or ``--api-key-file``.
  Options are never matched by prefix (``allow_abbrev=False``), so ``--api-key``
  cannot be taken for ``--api-key-file``.
- Nothing typed that may be a secret (the value after such an option, anything shaped
  like a LeadLex key, the key in the environment) appears in any error message.
- An unknown option gets the closest known ones; an option of a sub-command given
  before the sub-command says where it goes.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from bulktag.errors import KEY_SHAPE, UsageError

__all__ = [
    "SECRET_OPTIONS",
    "Parser",
    "RefuseSecret",
    "dash_files",
    "hint_unknown",
    "misplaced_option",
    "refuse_secrets",
    "secrets",
]

#: Options a newcomer may try for the key: each is refused, its value never echoed.
SECRET_OPTIONS = (
    "--api-key",
    "--key",
    "--token",
    "--api-token",
    "--bearer",
    "--secret",
    "--password",
)
#: Options people reach for that bulktag names otherwise.
_INSTEAD = {
    "--tag": "--add-tag",
    "--tags": "--tags-column",
    "--column": "--id-column",
    "--id": "--id-column",
    "--url": "--api-url",
    "--output": "--out",
    "--key-file": "--api-key-file",
    "--rate": "--rate-per-minute",
    "--retries": "--max-attempts",
    "--workers": "--concurrency",
}
KEY_ADVICE = (
    "keys never come from the command line (they would land in shell history, ps and cron "
    "mail): set LEADLEX_API_KEY, or pass --api-key-file FILE (a file holding only the key, "
    "mode 0600)"
)


class RefuseSecret(argparse.Action):
    """An option that would take a key: a usage error that never repeats its value."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.setdefault("nargs", "?")
        kwargs.setdefault("help", argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> NoReturn:
        raise UsageError(f"{parser.prog}: {option_string}: {KEY_ADVICE}")


def secrets(argv: Sequence[str], environ: Mapping[str, str]) -> list[str]:
    """What in ``argv`` (and the environment's key) may be a secret, longest first."""
    found: list[str] = []
    for index, token in enumerate(argv):
        name, equals, value = token.partition("=")
        if name in SECRET_OPTIONS:
            if equals:
                found.append(value)
            elif index + 1 < len(argv):
                found.append(argv[index + 1])
        found += KEY_SHAPE.findall(token)
    key = environ.get("LEADLEX_API_KEY", "").strip()
    if key:
        found.append(key)
    return sorted({s for s in found if s}, key=len, reverse=True)


def hint_unknown(parser: argparse.ArgumentParser, message: str) -> str:
    """argparse's "unrecognized arguments" with the closest known options."""
    _, found, listed = message.partition("unrecognized arguments:")
    if not found:
        return message
    known = [o for o in parser._option_string_actions if o.startswith("--")]
    hints = []
    for token in listed.split():
        name = token.partition("=")[0]
        if not name.startswith("-"):
            continue
        instead = _INSTEAD.get(name)
        close = [instead] if instead in known else difflib.get_close_matches(name, known, n=2)
        if close:
            hints.append(f"{name}: did you mean {' or '.join(close)}?")
    return "; ".join([message, *hints])


def _file_like(token: str) -> bool:
    """``-export.csv``, ``-segments/x.xlsx``: a file's name more than an option's."""
    return not token.startswith("--") and ("." in token or "/" in token)


def dash_files(argv: Sequence[str], parser: argparse.ArgumentParser) -> list[str]:
    """``bulktag run -export.csv``: a word with one dash that is no option of the command
    and names an existing file, or looks like a file's name (a dot, a slash), is that file
    (as ``./-export.csv``), not an option."""
    known = {*parser._option_string_actions, "-"}  # "-" alone is stdin
    return [
        f"./{word}"
        if word.startswith("-")
        and not word.startswith("--")
        and word.partition("=")[0] not in known
        and (_file_like(word) or Path(word).exists())
        else word
        for word in argv
    ]


def misplaced_option(argv: Sequence[str], commands: Sequence[str]) -> str | None:
    """``bulktag --plan org run f.csv``: the option belongs after the sub-command."""
    if not argv or not argv[0].startswith("-") or argv[0] in ("-h", "--help", "--version"):
        return None
    command = next((token for token in argv if token in commands), None)
    if command is None:
        return None
    option = argv[0].partition("=")[0]
    return (
        f"{option} goes after the sub-command: bulktag {command} {option} ... "
        f"(see bulktag {command} --help)"
    )


class Parser(argparse.ArgumentParser):
    """Never matches an option by a prefix of it; errors are UsageError, with hints."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False  # --api-key must never be taken for --api-key-file
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}")


def refuse_secrets(p: argparse.ArgumentParser, *, but: Sequence[str] = ()) -> None:
    """Options a key might be typed into: each refused, its value never repeated."""
    for option in SECRET_OPTIONS:
        if option not in but:
            p.add_argument(option, action=RefuseSecret, dest=f"_secret{option}")
