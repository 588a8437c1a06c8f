"""The `secret` and `schedule` commands on the `sheetreg` group, for the duration of a test.

Until cli.py imports sheetreg.cli_ops itself, tests add its commands for one test and take them
away again, so other tests see the CLI as it ships. Once cli.py registers them, this is a no-op.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from sheetreg.cli import cli


@contextlib.contextmanager
def ops_commands() -> Iterator[click.Group]:
    """The CLI group with `secret` and `schedule` registered; restored afterwards."""
    before = dict(cli.commands)
    from sheetreg import cli_ops  # registers its commands on first import

    for command in (cli_ops.secret, cli_ops.schedule):
        cli.add_command(command)
    try:
        yield cli
    finally:
        cli.commands.clear()
        cli.commands.update(before)
