"""The command line: parse, call one library function, print, exit.

Exit codes: 0 fine, 1 findings or refusals the user must act on, 2 unusable input or usage.
Every sheetreg error becomes one clean line on stderr here, in one place; an unexpected error
becomes a one-line message too (set SHEETREG_DEBUG=1 to see the traceback).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from sheetreg import __version__
from sheetreg.errors import SheetregError

FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output for people (text) or for programs (json).",
)
LANG = click.option(
    "--lang",
    type=click.Choice(["fi", "en"]),
    default=None,
    help="Language of messages; defaults to the workbook's language (Finnish first).",
)


def _parse_today(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use the form YYYY-MM-DD, e.g. 2026-11-25") from None


TODAY = click.option(
    "--today",
    callback=_parse_today,
    metavar="YYYY-MM-DD",
    help="The date to act as of (default: the real today).",
)


class SheetregGroup(click.Group):
    """Turns every error into one line and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; map sheetreg errors to their exit codes."""
        try:
            return super().invoke(ctx)
        except SheetregError as exc:
            click.echo(f"sheetreg: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("sheetreg: interrupted; nothing half-written was left.", err=True)
            ctx.exit(130)
        except Exception as exc:
            if os.environ.get("SHEETREG_DEBUG"):
                raise
            click.echo(
                f"sheetreg: internal error ({type(exc).__name__}); nothing was written. "
                "Run again with SHEETREG_DEBUG=1 for details.",
                err=True,
            )
            ctx.exit(2)


@click.group(cls=SheetregGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sheetreg")
def cli() -> None:
    """sheetreg keeps a therapy practice's Excel client register honest under the GDPR.

    sheetreg pitää terapiavastaanoton Excel-asiakasrekisterin tietosuoja-asetuksen mukaisena.
    """


_FAST_EXIT = False  # set by main(): a real process, not a test runner


def _finish(code: int) -> None:
    """Exit; from a real process without tearing down millions of cell objects one by one.

    Freeing a 100,000-client register at interpreter shutdown takes longer than reading it.
    Everything sheetreg writes is closed before this point; only stdout/stderr need a flush.
    """
    if _FAST_EXIT:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe (| head): no traceback
                if stream is sys.stdout and not code:
                    code = 120  # what Python's own exit gives when stdout cannot be flushed
        os._exit(code)
    sys.exit(code)


def _emit_json(payload: Any) -> None:
    click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@FORMAT
@LANG
@TODAY
def validate(path: Path, fmt: str, lang: str | None, today: dt.date) -> None:
    """Check a register and report every finding at once.

    Tarkistaa rekisterin ja kertoo kaikki löydökset kerralla.

    \b
    Example:  sheetreg validate asiakasrekisteri.xlsx --format json
    Exit: 0 no errors, 1 errors found, 2 the file cannot be used.
    """
    from sheetreg.pipeline import validate_path

    report = validate_path(path, today, lang)
    if fmt == "json":
        _emit_json(report.to_dict())
    else:
        from sheetreg.textreport import render_findings

        click.echo(render_findings(report, lang or report.lang))
    _finish(0 if report.valid else 1)


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--lang", type=click.Choice(["fi", "en"]), default="fi", show_default=True)
@FORMAT
def init(path: Path, lang: str, fmt: str) -> None:
    """Write a new, empty register from the template.

    Luo uuden, tyhjän rekisterin mallipohjasta.

    \b
    Example:  sheetreg init asiakasrekisteri.xlsx --lang fi
    """
    from sheetreg.template import write_template

    if path.exists():
        raise _refused(f"{path} already exists; choose another name. / Tiedosto on jo olemassa.")
    write_template(path, lang)
    if fmt == "json":
        _emit_json({"created": str(path), "lang": lang})
    else:
        click.echo(f"Luotu / created: {path}")


def _refused(message: str) -> SheetregError:
    from sheetreg.errors import WriteRefused

    return WriteRefused(message)


@cli.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path),
    default=Path("sheetreg-demo"),
    show_default=True,
    help="Folder for the demo register and everything sheetreg makes.",
)
@click.option("--clients", type=click.IntRange(80, 200_000), default=300, show_default=True)
@click.option("--lang", type=click.Choice(["fi", "en"]), default="fi", show_default=True)
@TODAY
@FORMAT
def demo(folder: Path, clients: int, lang: str, today: dt.date, fmt: str) -> None:
    """Make a demo register of synthetic clients and run the weekly job on it.

    Tekee esimerkkirekisterin keksityistä asiakkaista ja ajaa sille viikkoajon.

    \b
    Example:  sheetreg demo --dir /tmp/sheetreg-demo
    """
    from sheetreg.demo_run import run_demo

    summary = run_demo(folder, clients=clients, lang=lang, today=today)
    if fmt == "json":
        _emit_json(summary.to_dict())
    else:
        click.echo(summary.text())


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    global _FAST_EXIT  # noqa: PLW0603 - one switch for the whole process
    _FAST_EXIT = True
    args = sys.argv[1:] if argv is None else argv
    if "schedule" not in args[:1]:
        # A one-shot command builds hundreds of thousands of acyclic objects (cells, statuses,
        # findings) and exits without freeing them: the cyclic collector's passes over them
        # would only cost time. The scheduler, which runs for weeks, keeps its collector.
        gc.disable()
    try:
        cli.main(args=argv, prog_name="sheetreg")
    except SystemExit as done:  # every command ends here (click exits even on success)
        code = done.code
        if code is None:
            code = 0
        elif not isinstance(code, int):  # a message, as sys.exit("...") gives
            click.echo(str(code), err=True)
            code = 1
        _finish(code)


# The retention, requests and scheduling commands live in their own modules; importing
# them registers them on the group (they import this module, so this stays at the end).
from sheetreg import cli_ops, cli_requests, cli_retention  # noqa: E402, F401
