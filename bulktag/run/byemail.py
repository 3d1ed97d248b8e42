"""The directory session of a run that matches contacts by email: the key it reads with
(a dry run's too), the job's kept directory, and the matching itself
(:mod:`bulktag.run.matching`), made into the stage a run's plan calls.

Each directory session's export calls are booked in the user's quota store as it ends,
but a dry run's: a dry run changes nothing outside its folder (DESIGN.md), the quota
store included. Its exports do spend LeadLex's day: the plan says how many before they
are made, and the next run's first answer tells the store what is left."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import anyio

from bulktag.config import ApiKey, RunConfig, load_api_key
from bulktag.errors import ConfigError
from bulktag.run.kept import KeptDirectory
from bulktag.run.matching import EmailStage
from bulktag.run.session import Target, directory
from bulktag.runtime import Runtime
from bulktag.send.directory import DirectoryRead
from bulktag.send.work import DispatchStatistics

__all__ = ["email_stage"]


def email_stage(
    config: RunConfig,
    runtime: Runtime,
    key: ApiKey | None,
    *,
    target: Callable[[ApiKey], Target],
    book: Callable[[DispatchStatistics], None],
    now: Callable[[], float],
) -> EmailStage:
    """The matching a run's plan stage calls: the directory read with ``key`` (a dry run
    has none: the key is loaded for it, if there is one), kept by a job."""

    def usable_key() -> ApiKey | None:
        if key is not None:
            return key
        try:
            return load_api_key(config.key_file, dict(runtime.env), config.key_env)
        except ConfigError:
            return None

    def read(after: str | None) -> tuple[DirectoryRead, DispatchStatistics]:
        found = usable_key()
        if found is None:
            raise ConfigError(
                "matching by email needs the workspace's directory, read with the key (a dry "
                "run too: export calls, no tag): "
                + f"set {config.key_env} or pass --api-key-file FILE"
            )
        aimed = target(found)
        try:
            return anyio.run(
                partial(directory, aimed, runtime, after),
                backend=runtime.backend,
                backend_options=dict(runtime.backend_options or {}),
            )
        finally:
            if aimed.shared is not None:
                aimed.shared.close()

    kept = None
    job = config.job
    if job is not None:
        known = usable_key()
        if known is not None:
            workspace = f"{config.api_url.rstrip('/')} {known.fingerprint}"
            kept = KeptDirectory(job.folder, workspace, job.directory_days * 86_400)
    return EmailStage(read=read, kept=kept, now=now, dry_run=config.dry_run, book=book)
