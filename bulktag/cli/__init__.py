"""The command line: the commands, their options (one spec), job files, usage errors, the demo.

``bulktag.cli:main`` is the entry point of the ``bulktag`` command."""

from bulktag.cli.commands import main

__all__ = ["main"]
