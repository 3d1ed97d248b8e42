"""Configuration: frozen dataclasses, the API key (never shown), and the API URL rules."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NoReturn, get_args
from urllib.parse import urlsplit

from bulktag.errors import ConfigError
from bulktag.leadlex import DEFAULT_API_URL, PLANS

__all__ = [
    "API_KEY_ENV",
    "API_URL_ENV",
    "KEEP_RUNS",
    "MAX_CONCURRENCY",
    "OUTPUT_FORMATS",
    "ApiKey",
    "DispatchSettings",
    "JobSettings",
    "ReadOptions",
    "RunConfig",
    "check_api_url",
    "is_loopback",
    "key_source",
    "load_api_key",
]

API_KEY_ENV = "LEADLEX_API_KEY"
API_URL_ENV = "LEADLEX_API_URL"

log = logging.getLogger("bulktag")

TagCase = Literal["preserve", "lower"]
#: How rows find their contact: by its ID, by its email address, or by ID when a column
#: holds IDs and by email otherwise.
Match = Literal["auto", "id", "email"]
#: How a file is read, and the formats bulktag writes (an XLS or ODS input is read as a
#: spreadsheet, and its outputs are XLSX); each output file's extension is its format.
OutputFormat = Literal["csv", "parquet", "xlsx", "ndjson"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)
#: The workspace's LeadLex plan when neither ``--plan`` nor a job file names one.
DEFAULT_PLAN = "pro"
#: Requests in flight at most (``--concurrency``, ``[limits] concurrency``).
MAX_CONCURRENCY = 256
#: A job's run folders kept by default (``keep_runs``): a month of nights. Every folder
#: kept grew to about 195 GB a year for a 10M-pair export under the quota.
KEEP_RUNS = 30


def key_source(key_file: Path | None, variable: str = API_KEY_ENV) -> str:
    """Where a key comes from, as messages name it: "the key in $LEADLEX_API_KEY"."""
    if key_file is not None:
        return f"the key in the file {key_file}"
    return f"the key in ${variable}"


class ApiKey:
    """A LeadLex API key, and where it came from (``source``, for messages: a 401 names
    the file or variable to fix). Its repr and str never show it; it cannot be pickled."""

    __slots__ = ("_secret", "source")

    def __init__(self, secret: str, source: str = "the API key") -> None:
        problem = key_problem(secret)
        if problem is not None:
            raise ConfigError(f"{source} {problem} (the key is not shown)")
        self._secret = secret
        self.source = source

    def reveal(self) -> str:
        """The secret, for the Authorization header only."""
        return self._secret

    @property
    def fingerprint(self) -> str:
        """A short hash naming the key in state files and logs (the key itself never is)."""
        return hashlib.sha256(self._secret.encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"ApiKey(fingerprint={self.fingerprint!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __reduce__(self) -> NoReturn:
        raise TypeError("an ApiKey cannot be pickled")


#: A LeadLex key: ``wbk_`` and its secret.
KEY_PREFIX = "wbk_"
_ASSIGNMENT = re.compile(r"^(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=")


def key_problem(secret: str) -> str | None:
    """What is wrong with ``secret`` as a LeadLex key, in words that do not show it (the
    forms a copied key takes on its way: a BOM, a ``.env`` line, quotes, ``Bearer``, a
    line break); None when it looks like a key."""
    if not secret:
        return "is empty"
    if secret.startswith("\ufeff"):
        return (
            "starts with a byte-order mark (U+FEFF, which some editors write): save it as "
            "UTF-8 without a BOM"
        )
    if _ASSIGNMENT.match(secret):
        name = secret.split("=", 1)[0].removeprefix("export").strip()
        return (
            f"is a line '{name}=...' (a copied .env line): keep only the key, what follows the '='"
        )
    if len(secret) > 1 and secret[0] == secret[-1] and secret[0] in "\"'":
        return "is in quotes (as some .env loaders leave them): give the key without them"
    if secret[:7].lower() == "bearer ":
        return "starts with 'Bearer ': give the key alone (wbk_...); bulktag adds 'Bearer ' itself"
    spaces = [i + 1 for i, c in enumerate(secret) if c.isspace() or ord(c) < 32]
    if spaces:
        where = ", ".join(str(i) for i in spaces[:3])
        return (
            f"has white space or a control character inside it (character {where} of "
            f"{len(secret)}): a key has none; copy it again, whole"
        )
    if not secret.startswith(KEY_PREFIX):
        return (
            f"does not start with {KEY_PREFIX}, as every LeadLex key does: copy the key "
            "again from LeadLex's settings, whole"
        )
    return None


def load_api_key(
    key_file: Path | None, environ: dict[str, str] | None = None, variable: str = API_KEY_ENV
) -> ApiKey:
    """The key from ``key_file`` if given, else from the variable (``LEADLEX_API_KEY``).

    A key file readable by group or others is used, with a warning.
    """
    env = os.environ if environ is None else environ
    if key_file is not None:
        try:
            mode = key_file.stat().st_mode
            text = key_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{key_file}: cannot read the API key file ({exc.strerror})"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(f"{key_file}: the API key file is not UTF-8 text") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning(
                "API key file %s is readable by others (mode %o); run: chmod 600 %s",
                key_file,
                stat.S_IMODE(mode),
                key_file,
            )
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if len(lines) != 1:
            raise ConfigError(
                f"{key_file}: the API key file must hold exactly one non-empty line, the key "
                f"(it holds {len(lines)})"
            )
        return ApiKey(lines[0], key_source(key_file))
    secret = env.get(variable, "").strip()
    if not secret:
        raise ConfigError(f"no API key: set {variable} or pass --api-key-file FILE")
    return ApiKey(secret, key_source(None, variable))


def is_loopback(host: str) -> bool:
    """``localhost``, a name under ``.localhost`` (RFC 6761) or a loopback address (IPv6
    with or without brackets): where plain http may carry the key, and where the emulator
    may listen without ``--public``."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_api_url(url: str) -> str:
    """The base URL, without a trailing slash; ``https://`` unless the host is loopback."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"API URL {url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise ConfigError("the API URL must not carry credentials; use LEADLEX_API_KEY")
    if parts.query or parts.fragment:
        raise ConfigError(f"API URL {url!r} must not have a query or fragment")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"API URL {url!r} is plain http to a non-loopback host; the key would travel "
            "in clear text. Use https:// (http is only allowed for 127.0.0.1 / localhost)"
        )
    return url.strip().rstrip("/")


@dataclass(frozen=True, slots=True)
class ReadOptions:
    """How input files are read and their tags normalised."""

    delimiter: str | None = None  #: None: sniffed among , ; tab |
    encoding: str | None = None  #: None: detected (BOM, UTF-8, UTF-16, else cp1252)
    sheet: str | None = None  #: XLSX sheet name or 1-based number; None: the first
    header_row: int | None = None  #: the header's line (CSV) or row (sheet); None: searched
    id_column: str | None = None
    match: Match = "auto"
    email_column: str | None = None  #: None: by alias, else by content
    tags_columns: tuple[str, ...] = ()
    tag_separators: str = ",;|"  #: "" keeps each cell as one tag
    tag_case: TagCase = "preserve"
    tag_prefix: str = ""
    static_tags: tuple[str, ...] = ()
    #: Rows of a bulktag failures file whose failure was permanent are sent again too.
    retry_permanent: bool = False
    #: An input changed less than this many seconds ago is not read yet (a job's [read]).
    settle_seconds: float = 0.0
    #: Inputs whose last line has no end while the job's earlier exports of them had one:
    #: their last row is a reject (cut while being written?), never tags.
    cut_suspects: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    """How fast and how stubbornly requests are sent."""

    concurrency: int = 8
    rate_per_minute: float | None = 50.0  #: None: unlimited
    per_day: int | None = 1_000  #: the plan's daily quota, for estimates
    quota_reserve: int = 0
    timeout: float = 30.0
    max_attempts: int = 10
    retry_time: float = 600.0  #: seconds a contact may spend retrying
    max_wait: float = 900.0  #: a longer Retry-After or outage stops sending (the rest deferred)
    backoff_base: float = 0.5
    backoff_cap: float = 60.0
    grace: float = 10.0  #: seconds in-flight requests get after SIGINT / SIGTERM
    verify_ambiguous: bool = False  #: read a contact before retrying an ambiguous failure

    @classmethod
    def for_plan(cls, plan: str, **overrides: object) -> DispatchSettings:
        figures = PLANS[plan]
        values: dict[str, object] = {
            "rate_per_minute": None if figures.per_minute is None else float(figures.per_minute),
            "per_day": figures.per_day,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]  # overrides are typed by the caller


@dataclass(frozen=True, slots=True)
class JobSettings:
    """What makes a run part of a recurring job (``--job FILE``)."""

    name: str
    folder: Path  #: the job's state, lock, carry-over and runs
    keep_runs: int | None = KEEP_RUNS  #: None: keep every run folder
    ledger: bool = True
    ledger_days: float = 0.0  #: 0: applied pairs are skipped forever
    #: The kept directory of contacts by email is read again when older than this.
    directory_days: float = 1.0
    file: Path | None = None  #: the job file (for the commands messages give)

    @property
    def command(self) -> str:
        """The command that runs the job's next night."""
        return f"bulktag run --job {self.file or 'FILE'}"


@dataclass(frozen=True, slots=True)
class RunConfig:
    """Everything one ``bulktag run`` needs."""

    inputs: tuple[str, ...]
    out_dir: Path | None = None
    api_url: str = DEFAULT_API_URL
    api_url_from: str = "LeadLex's, the default"  #: where ``api_url`` came from, for the plan
    key_file: Path | None = None  #: else the environment variable ``key_env``
    key_env: str = API_KEY_ENV
    plan_name: str | None = DEFAULT_PLAN
    read: ReadOptions = field(default_factory=ReadOptions)
    dispatch: DispatchSettings = field(default_factory=DispatchSettings)
    output_format: OutputFormat | None = None  #: None: the input's format
    dry_run: bool = False
    progress: bool | None = None  #: None: only on a terminal
    job: JobSettings | None = None
    resume: Path | None = None  #: continue this interrupted run folder
    force: bool = False  #: ignore the ledger: send pairs already applied
    skip_existing: bool = False  #: ask the CRM (export) what contacts carry before sending
    metrics_file: Path | None = None
    ca_bundle: Path | None = None  #: CAs to trust besides the system's (a company's own)
    report: bool = True  #: write report.html (and a job's history.html) after the run
