"""`sheetreg run`, `sheetreg secret` and `sheetreg schedule`: the weekly job and its setup.

Each command makes one library call (`sheetreg.run`, `sheetreg.secrets`, `sheetreg.scheduler`),
prints, exits.
A password is never printed, logged or put in an error message.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sheetreg.cli import FORMAT, LANG, TODAY, _emit_json, _finish, cli
from sheetreg.errors import SheetregError
from sheetreg.secrets import SECRET_NAMES

if TYPE_CHECKING:
    import datetime as dt

SECRET_NAME = click.argument("name", type=click.Choice(SECRET_NAMES))


@cli.command("run")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--reports",
    "report_dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of the hygiene report (default: reports/ beside the workbook). / Raporttikansio.",
)
@TODAY
@FORMAT
@LANG
def run_command(
    path: Path, report_dir: Path | None, today: dt.date, fmt: str, lang: str | None
) -> None:
    """The weekly job: validate, flag, request deadlines and extracts, erasures, report.

    Viikkoajo: tarkistus, tietosuojatilat, pyyntöjen määräajat ja otteet, hyväksytyt
    poistot ja raportti. Työkirja luetaan kerran ja kirjoitetaan kerran; toinen ajo samana
    päivänä ei muuta mitään.

    \b
    Example:  sheetreg run asiakasrekisteri.xlsx --today 2026-11-25
    Exit: 0 nothing to act on, 1 something needs you (an error finding, an overdue request, a
    refused erasure or write), 2 the file cannot be used.
    """
    from sheetreg.run import run_weekly

    result = run_weekly(path, today, lang=lang, report_dir=report_dir)
    if fmt == "json":
        _emit_json(result.to_dict())
    else:
        click.echo(result.text())
    _finish(result.exit_code)


@cli.group()
def secret() -> None:
    """Store or delete a password in the operating system's keyring.

    Tallentaa tai poistaa salasanan käyttöjärjestelmän avainnippuun.

    \b
    Secrets / salaisuudet:
      workbook-password  the password of an encrypted workbook / salatun työkirjan salasana
      smtp-password      the mail server password for the summary e-mail /
                         yhteenvetosähköpostin palvelimen salasana
    Each is stored per workbook (service "sheetreg", user "<name>:<workbook's full path>").
    A plaintext keyring is refused unless SHEETREG_ALLOW_PLAINTEXT_KEYRING=1.
    """


@secret.command("set")
@SECRET_NAME
@click.option(
    "--workbook",
    required=True,
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    help="The workbook the secret belongs to. / Työkirja, jonka salaisuus on kyseessä.",
)
@click.option(
    "--stdin",
    "from_stdin",
    is_flag=True,
    help="Read the secret from the first line of standard input (for scripts).",
)
@FORMAT
def secret_set(name: str, workbook: Path, from_stdin: bool, fmt: str) -> None:
    """Store a secret; asks for it twice, without showing it.

    Tallentaa salaisuuden; kysyy sen kahdesti näyttämättä sitä.

    \b
    Example:  sheetreg secret set workbook-password --workbook asiakasrekisteri.xlsx
              printf '%s\\n' "$PW" | sheetreg secret set smtp-password --workbook r.xlsx --stdin
    """
    from sheetreg.secrets import backend_name, checked_backend, set_secret

    backend = checked_backend()  # refuse a plaintext keyring before asking for anything
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    else:
        value = click.prompt(
            f"{name} (salasana / password)",
            hide_input=True,
            confirmation_prompt="Uudelleen / repeat",
            show_default=False,
        )
    set_secret(name, workbook, value)
    if fmt == "json":
        _emit_json(
            {
                "secret": name,
                "workbook": str(workbook.resolve()),
                "stored": True,
                "backend": backend_name(backend),
            }
        )
    else:
        click.echo(
            f"Tallennettu avainnippuun / stored in the keyring: {name} for {workbook.resolve()} "
            f"({backend_name(backend)})."
        )


@secret.command("delete")
@SECRET_NAME
@click.option(
    "--workbook",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The workbook the secret belongs to (it need not exist any more).",
)
@FORMAT
def secret_delete(name: str, workbook: Path, fmt: str) -> None:
    """Delete a stored secret; nothing happens if none is stored.

    Poistaa tallennetun salaisuuden.

    \b
    Example:  sheetreg secret delete smtp-password --workbook asiakasrekisteri.xlsx
    """
    from sheetreg.secrets import delete_secret

    deleted = delete_secret(name, workbook)
    if fmt == "json":
        _emit_json({"secret": name, "workbook": str(workbook.resolve()), "deleted": deleted})
    elif deleted:
        click.echo(f"Poistettu / deleted: {name} for {workbook.resolve()}.")
    else:
        click.echo(f"Ei tallennettu / nothing stored: {name} for {workbook.resolve()}.")


@cli.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The weekly job's settings (default: workflows/weekly-hygiene.toml). / "
    "Viikkoajon asetukset.",
)
@click.option(
    "--workbook",
    type=click.Path(path_type=Path, dir_okay=False),
    help="The workbook, instead of the one in the settings.",
)
@click.option("--once", is_flag=True, help="Run the job only if it is due, then exit.")
@click.option(
    "--install", is_flag=True, help="Install the OS autostart entry (systemd, launchd, schtasks)."
)
@click.option(
    "--print", "print_only", is_flag=True, help="Show the autostart entry; change nothing."
)
@click.option(
    "--os",
    "system",
    type=click.Choice(["linux", "macos", "windows"]),
    help="The system to make the autostart entry for (default: this one).",
)
@FORMAT
def schedule(
    *,
    config_path: Path | None,
    workbook: Path | None,
    once: bool,
    install: bool,
    print_only: bool,
    system: str | None,
    fmt: str,
) -> None:
    """Run the weekly job on schedule, catching up runs missed while the machine was off.

    Ajaa viikkoajon aikataulussa ja korvaa koneen ollessa pois päältä väliin jääneet ajot.

    \b
    Examples:
      sheetreg schedule --config workflows/weekly-hygiene.toml      # keeps running
      sheetreg schedule --once                                      # run if due, then exit
      sheetreg schedule --install                                   # start with the computer
      sheetreg schedule --install --print --os windows              # only show the entry
    Exit (--once): 0 done or nothing due, 1 the run failed (retried later), 2 unusable settings
    or another scheduler already running.
    """
    from sheetreg.scheduler import (
        DEFAULT_CONFIG,
        WeeklyScheduler,
        autostart_entry,
        current_system,
        default_log_dir,
        install_autostart,
        load_config,
    )

    config = load_config(config_path or DEFAULT_CONFIG, workbook=workbook)
    if install or print_only or system:
        entry = autostart_entry(config, system=system)
        if print_only or (system and not install):
            if fmt == "json":
                _emit_json(
                    {
                        "system": entry.system,
                        "files": {str(p): c for p, c in entry.files.items()},
                        "commands": [s.text() for s in entry.steps],
                    }
                )
            else:
                click.echo(entry.text(), nl=False)
            return
        if system and system != current_system():
            raise SheetregError("--install works for this machine only; use --print with --os.")
        done = install_autostart(entry)
        if fmt == "json":
            _emit_json({"system": entry.system, "done": done})
        else:
            click.echo("\n".join(done))
            click.echo("Viikkoajo käynnistyy nyt koneen mukana / the weekly job now starts with "
                       "the computer.")  # fmt: skip
        return

    scheduler = WeeklyScheduler(config)
    if once:
        outcome = scheduler.run_once()
        if fmt == "json":
            _emit_json(outcome.to_dict())
        elif outcome.status == "not-due":
            click.echo(
                f"Ei ajettavaa / nothing due; next run {scheduler.next_slot(outcome.started)}."
            )
        elif outcome.status == "ok":
            counts = ", ".join(f"{k} {v}" for k, v in (outcome.counts or {}).items())
            click.echo(f"Ajo valmis / run done{': ' + counts if counts else ''}.")
        else:
            click.echo(
                f"Ajo epäonnistui / the run failed ({outcome.error}); see {default_log_dir()}.",
                err=True,
            )
        _finish(outcome.exit_code)
        return
    click.echo(
        f"Ajastin käynnissä / scheduler running: {config.day} {config.time}, "
        f"{config.workbook}; log: {default_log_dir()}. Ctrl+C stops / pysäyttää."
    )
    scheduler.run_forever()
