"""What a run checks before its first call, and small judgements on its settings: the URL,
the key and where it came from, the metrics file's folder, the output format, a results
sheet too large for XLSX, a failures file sent before."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from bulktag.clock import utc_minute
from bulktag.config import (
    ApiKey,
    OutputFormat,
    RunConfig,
    check_api_url,
    load_api_key,
)
from bulktag.config import key_source as source_of_key
from bulktag.errors import (
    ConfigError,
    UsageError,
)
from bulktag.machine import digest
from bulktag.outputs.publish import XLSX_ROWS
from bulktag.plan.build import PlanStats
from bulktag.read.frame import InputFrame
from bulktag.read.ownfiles import OwnKind
from bulktag.send.client import check_trust_settings
from bulktag.state.quota import QuotaStore, using_quota_store
from bulktag.state.rundir import RunPaths

log = logging.getLogger("bulktag")

__all__ = [
    "check_metrics_file",
    "key_source",
    "output_format",
    "preflight",
    "refuse_overfull_sheet",
    "warn_of_earlier_reruns",
]


def output_format(config: RunConfig, frames: list[InputFrame]) -> OutputFormat:
    """The input's format (CSV in, CSV out...); CSV when inputs mix formats."""
    if config.output_format:
        return config.output_format
    formats = (
        {f.format for f in frames if f.own is None}
        or {f.format for f in frames if f.own is not OwnKind.CARRY_OVER}
        or {"csv"}
    )
    return formats.pop() if len(formats) == 1 else "csv"


def refuse_overfull_sheet(fmt: OutputFormat, stats: PlanStats) -> None:
    """XLSX results that a sheet cannot hold: refused before anything is sent (rows would
    be lost after it)."""
    rows = max(stats.contacts, stats.rejects)
    if fmt == "xlsx" and rows >= XLSX_ROWS:
        raise UsageError(
            f"the results would hold {rows:,} rows, more than an XLSX sheet does "
            f"({XLSX_ROWS - 1:,} below its header): give --format csv or parquet; nothing "
            "was sent"
        )


def warn_of_earlier_reruns(stats: PlanStats, state_dir: Path, run_dir: Path, at: float) -> None:
    """A failures file sent again: warn when an earlier run already sent this one (same
    content), naming that run's own failures file; then remember this run."""
    for item in stats.inputs:
        path = Path(item.source)
        if item.own not in (OwnKind.FAILURES, OwnKind.RESULTS) or not path.is_file():
            continue
        content = digest(path)
        source = item.source

        def warn(store: QuotaStore, content: str = content, source: str = source) -> None:
            for earlier, when in store.reruns_of(content):
                failures = RunPaths(earlier).failures_or_default()
                stamp = utc_minute(when)
                log.warning(
                    "%s was already sent by the run %s (%s): what that run could not do is in "
                    "%s; sending this file again re-sends what it did",
                    source,
                    earlier,
                    stamp,
                    failures,
                )
            store.record_rerun(content, source, run_dir, at)

        using_quota_store(state_dir, at, warn)


def preflight(config: RunConfig, env: Mapping[str, str]) -> ApiKey | None:
    """What can be checked before a run folder exists: the URL, the key (none for a dry
    run), the TLS settings and the metrics file's folder. ConfigError (78) otherwise."""
    check_api_url(config.api_url)
    check_metrics_file(config.metrics_file)
    if config.dry_run:
        return None
    key = load_api_key(config.key_file, dict(env), config.key_env)
    check_trust_settings(os.environ, config.ca_bundle)
    return key


def key_source(config: RunConfig) -> str:
    """Where the run's key comes from, for messages: "the key in $LEADLEX_API_KEY"."""
    return source_of_key(config.key_file, config.key_env)


def check_metrics_file(path: Path | None) -> None:
    """The metrics file's folder exists (node_exporter's textfile directory: bulktag does
    not create it, as a typo would silently write where nothing reads)."""
    if path is not None and not path.parent.is_dir():
        raise ConfigError(
            f"--metrics-file {path}: the folder {path.parent} does not exist; give the "
            "node_exporter textfile collector's directory (--collector.textfile.directory)"
        )
