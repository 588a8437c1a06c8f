"""`sheetreg flag` and `sheetreg erase`: retention on the command line.

Each command reads the workbook, makes one library call (`sheetreg.erasure`), prints, exits:
0 fine, 1 a refusal to act on, 2 unusable input. Output names client IDs, cells and columns,
never a name, phone number, e-mail or address.
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from sheetreg import forking
from sheetreg.cli import FORMAT, LANG, TODAY, _emit_json, cli
from sheetreg.run import SPARE_MODULES

if TYPE_CHECKING:
    from sheetreg.erasure import ErasureResult, FlagResult
    from sheetreg.register import Register
    from sheetreg.retention import ErasurePlan
    from sheetreg.workbook import WarmPatch

DRY_RUN = click.option(
    "--dry-run", is_flag=True, help="Show what would change; write nothing. / Älä kirjoita."
)


def _t(lang: str, fi: str, en: str) -> str:
    return fi if lang == "fi" else en


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@TODAY
@DRY_RUN
@FORMAT
@LANG
@forking.spares(2, *SPARE_MODULES)  # the patch's (read back there) and the fidelity check's
def flag(path: Path, today: dt.date, dry_run: bool, fmt: str, lang: str | None) -> None:
    """Write every client's privacy status in plain words.

    Kirjoittaa jokaisen asiakkaan tietosuojatilan selkokielellä (vain muuttuvat solut).

    \b
    Example:  sheetreg flag asiakasrekisteri.xlsx --today 2026-11-25
    Exit: 0 done (a second run writes nothing), 2 the file cannot be used.
    """
    from sheetreg.erasure import flag_workbook
    from sheetreg.workbook import load_package, read_register, warm_patch

    package = load_package(path)
    register = read_register(path, package=package, formulas=False)
    # The patch is prepared on the second core while the statuses are worked out here.
    warm = None if dry_run else warm_patch(package, register)
    del package
    result = flag_workbook(path, today, dry_run=dry_run, register=register, warm=warm)
    if fmt == "json":
        _emit_json(result.to_dict())
    else:
        click.echo(_flag_text(result, lang or register.lang))


def _flag_text(result: FlagResult, lang: str) -> str:
    c = result.counts()
    n = len(result.changes)
    if result.dry_run:
        head = _t(lang, f"Muuttuisi {n} solua (ei kirjoitettu).", f"{n} cells would change.")
    elif n:
        head = _t(lang, f"Tietosuojatila päivitetty: {n} solua.", f"Privacy status: {n} cells.")
    else:
        head = _t(lang, "Tietosuojatila on ajan tasalla.", "Privacy status is up to date.")
    counts = _t(
        lang,
        f"Aktiivisia {c['active']}, päättymässä {c['ending']}, päättyneitä {c['ended']} "
        f"(odottaa hyväksyntää {c['awaiting_approval']}, estetty {c['blocked']}, hyväksytty "
        f"{c['approved']}), poistettuja {c['erased']}.",
        f"Active {c['active']}, ending {c['ending']}, ended {c['ended']} (awaiting approval "
        f"{c['awaiting_approval']}, blocked {c['blocked']}, approved {c['approved']}), "
        f"erased {c['erased']}.",
    )
    return f"{head}\n{counts}"


@cli.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--client", "client_id", metavar="ID", help="The client ID to erase.")
@click.option(
    "--reason",
    type=click.Choice(["request", "ended"]),
    default=None,
    help="request: the client asked (what no hold covers goes now); ended: the relationship "
    "ended. Default: ended if it has, else request.",
)
@click.option(
    "--approved",
    is_flag=True,
    help="Erase every row whose Approve erasure says Kyllä/Yes (and automatic ones now due).",
)
@click.option(
    "--reapply",
    is_flag=True,
    help="Re-apply every logged erasure to a workbook restored from an old copy.",
)
@TODAY
@DRY_RUN
@click.option("--yes", is_flag=True, help="Do not ask before writing.")
@FORMAT
@LANG
@forking.spares(4, *SPARE_MODULES)  # the patch's and the checks', before the read (the
# patch is read back by its own spare; the others: fidelity, half the proof, the log's cells)
def erase(  # noqa: PLR0917 (click passes every option positionally)
    path: Path,
    client_id: str | None,
    reason: str | None,
    approved: bool,
    reapply: bool,
    today: dt.date,
    dry_run: bool,
    yes: bool,
    fmt: str,
    lang: str | None,
) -> None:
    """Erase a client's data, log it and prove it (backups too).

    Poistaa asiakkaan tiedot, kirjaa poiston lokiin ja todentaa sen (myös varmuuskopioista).

    \b
    Examples:
      sheetreg erase asiakasrekisteri.xlsx --client A1001 --reason request
      sheetreg erase asiakasrekisteri.xlsx --approved --yes
      sheetreg erase asiakasrekisteri.xlsx --reapply
    Exit: 0 erased (or nothing to do), 1 refused (the plan says why), 2 unusable input.
    """
    from sheetreg.workbook import load_package, read_register, warm_patch

    chosen = sum([client_id is not None, approved, reapply])
    if chosen != 1:
        raise click.UsageError("give exactly one of --client ID, --approved or --reapply")
    if reapply:
        _reapply(path, today, dry_run=dry_run, yes=yes, fmt=fmt, lang=lang)
        return
    package = load_package(path)
    register = read_register(path, package=package, formulas=False)
    # The patch is prepared on the second core while the plan is made (and confirmed).
    warm = None if dry_run else warm_patch(package, register, rows=False)
    del package
    try:
        lang = lang or register.lang
        if approved:
            _approved(
                path, register, today, dry_run=dry_run, yes=yes, fmt=fmt, lang=lang, warm=warm
            )
            return
        assert client_id is not None
        from sheetreg.retention import plan_erasure

        plan = plan_erasure(register, client_id, today, reason, lang=lang)
        codes = {r.code for r in plan.refusals}
        if "not-found" in codes and _already_erased(path, register, client_id, today):
            _say(
                fmt,
                {"client_id": client_id, "already_erased": True, "written": False},
                _t(
                    lang,
                    f"Asiakas {client_id} on jo poistettu.",
                    f"Client {client_id} is already erased.",
                ),
            )
            return
        if not plan.allowed:
            if fmt == "json":
                _emit_json({"plan": plan.to_dict(), "written": False})
            else:
                click.echo(_plan_text(plan, lang))
            sys.exit(0 if codes == {"already-erased"} else (2 if "not-found" in codes else 1))
        if dry_run:
            if fmt == "json":
                _emit_json({"plan": plan.to_dict(), "written": False, "dry_run": True})
            else:
                click.echo(_plan_text(plan, lang))
            return
        if not yes:
            click.echo(_plan_text(plan, lang), err=True)
            _confirm(lang)
        from sheetreg.erasure import execute_erasure

        result = execute_erasure(path, plan, register=register, warm=warm)
        if fmt == "json":
            _emit_json({"plan": plan.to_dict(), **result.to_dict()})
        else:
            click.echo(_result_text(result, lang))
    finally:
        if warm is not None:
            warm.discard()  # unless the write sent it the edits


def _say(fmt: str, payload: dict[str, object], text: str) -> None:
    if fmt == "json":
        _emit_json(payload)
    else:
        click.echo(text)


def _confirm(lang: str) -> None:
    prompt = _t(
        lang, "Poistetaanko nämä tiedot pysyvästi? [k/E]", "Erase these data for good? [y/N]"
    )
    answer = click.prompt(prompt, default="", show_default=False, err=True)
    if answer.strip().casefold() not in {"k", "kyllä", "kylla", "y", "yes"}:
        click.echo(_t(lang, "Mitään ei kirjoitettu.", "Nothing was written."), err=True)
        sys.exit(1)


def _already_erased(path: Path, register: Register, client_id: str, today: dt.date) -> bool:
    from sheetreg.erasure import load_key
    from sheetreg.retention import client_statuses

    key = load_key(path)
    if key is None:
        return False
    statuses = client_statuses(register, today)
    return key.reference(client_id) in statuses


def _plan_text(plan: ErasurePlan, lang: str) -> str:
    from sheetreg.erasure import reason_text
    from sheetreg.retention import fields_text, fmt_date

    scope = {
        "full": _t(lang, "koko asiakas", "the whole client"),
        "partial": _t(lang, "osittainen", "partial"),
        "retention-ended": _t(lang, "vanhentuneet laskurivit", "expired invoice rows"),
        "none": _t(lang, "ei mitään", "nothing"),
    }.get(plan.scope, plan.scope)
    lines = [
        _t(lang, "Poistosuunnitelma", "Erasure plan")
        + f": {plan.client_id} ({reason_text(plan.reason, plan.scope, lang)}) – {scope}"
    ]
    empty = [c for c in plan.changes if c.action == "empty"]
    if empty:
        lines.append(
            _t(lang, f"Tyhjennetään {len(empty)} solua: ", f"Emptying {len(empty)} cells: ")
            + fields_text(plan.erased_fields, lang)
        )
    if plan.pseudonymised:
        from sheetreg.schema import sheet_by_key

        where = ", ".join(
            f"{sheet_by_key(k).label(lang)} {n}" for k, n in plan.pseudonymised.items()
        )
        lines.append(
            _t(lang, "Asiakasnumero korvataan viitteellä: ", "Client ID replaced by a reference: ")
            + where
        )
    for hold in plan.kept:
        until = fmt_date(hold.until) if hold.until else _t(lang, "toistaiseksi", "open")
        lines.append(
            _t(lang, "Säilytetään", "Kept")
            + f" [{hold.kind}, {hold.ground}, {until}]: {fields_text(hold.fields, lang)}"
        )
    if plan.recipients:
        lines.append(
            _t(lang, "Kerro poistosta (GDPR 19): ", "Tell these recipients (GDPR 19): ")
            + ", ".join(r.name for r in plan.recipients)
        )
    if plan.suppression:
        lines.append(
            _t(
                lang,
                "Suoramarkkinointikielto jää voimaan avaimella tiivistettynä (GDPR 21).",
                "The direct-marketing objection stays on record as a keyed hash (GDPR 21).",
            )
        )
    if plan.scheduled:
        lines.append(plan.scheduled)
    lines += [r.message for r in plan.refusals]
    return "\n".join(lines)


def _result_text(result: ErasureResult, lang: str) -> str:
    lines = []
    for o in result.outcomes:
        if o.plan.scope == "full":
            head = _t(lang, "Poistettu", "Erased") + f": {o.plan.client_id} → {o.reference}"
        elif o.plan.scope == "retention-ended":
            head = _t(lang, "Vanhentuneet laskurivit poistettu", "Expired invoice rows erased")
            head += f": {o.reference}"
        else:
            head = _t(lang, "Osittain poistettu", "Partly erased") + f": {o.plan.client_id}"
        lines.append(f"{head} ({_t(lang, 'loki', 'log')} {o.log_id}); {o.verification.text(lang)}")
        if o.plan.scheduled:
            lines.append("  " + o.plan.scheduled)
        if o.plan.recipients:
            lines.append(
                _t(lang, "  Kerro poistosta: ", "  Tell: ")
                + ", ".join(r.name for r in o.plan.recipients)
            )
    for plan in result.refused:
        lines.append(f"{plan.client_id}: " + " ".join(r.message for r in plan.refusals))
    if result.backups:
        words = {
            "erased": _t(lang, "poistettu samoin", "erased the same way"),
            "removed": _t(lang, "poistettu kokonaan", "removed"),
            "clean": _t(lang, "ei tietoja", "without the data"),
        }
        parts = ", ".join(f"{words.get(k, k)} {len(v)}" for k, v in result.backups.items())
        lines.append(_t(lang, "Varmuuskopiot: ", "Backups: ") + parts)
    if not lines:
        lines.append(_t(lang, "Ei poistettavaa.", "Nothing to erase."))
    return "\n".join(lines)


def _approved(
    path: Path,
    register: Register,
    today: dt.date,
    *,
    dry_run: bool,
    yes: bool,
    fmt: str,
    lang: str,
    warm: WarmPatch | None = None,
) -> None:
    from sheetreg.erasure import execute_erasures
    from sheetreg.retention import due_erasures

    plans = due_erasures(register, today)
    allowed = [p for p in plans if p.allowed]
    if dry_run or not allowed:
        if fmt == "json":
            _emit_json({"plans": [p.to_dict() for p in plans], "written": False})
        else:
            click.echo(
                "\n\n".join(_plan_text(p, lang) for p in plans)
                or _t(lang, "Ei poistettavaa.", "Nothing to erase.")
            )
        sys.exit(1 if any(not p.allowed for p in plans) else 0)
    if not yes:
        click.echo("\n\n".join(_plan_text(p, lang) for p in plans), err=True)
        _confirm(lang)
    result = execute_erasures(path, plans, register=register, warm=warm)
    if fmt == "json":
        _emit_json(result.to_dict())
    else:
        click.echo(_result_text(result, lang))
    sys.exit(1 if result.refused else 0)


def _reapply(
    path: Path, today: dt.date, *, dry_run: bool, yes: bool, fmt: str, lang: str | None
) -> None:
    from sheetreg.erasure import reapply_erasures
    from sheetreg.workbook import read_register

    register = read_register(path, formulas=False)
    lang = lang or register.lang
    _, plans = reapply_erasures(path, today, dry_run=True)
    if dry_run or not plans:
        if fmt == "json":
            _emit_json({"plans": [p.to_dict() for p in plans], "written": False})
        else:
            click.echo(
                "\n\n".join(_plan_text(p, lang) for p in plans)
                or _t(lang, "Kaikki kirjatut poistot ovat voimassa.", "Every logged erasure holds.")
            )
        return
    if not yes:
        click.echo("\n\n".join(_plan_text(p, lang) for p in plans), err=True)
        _confirm(lang)
    result, _ = reapply_erasures(path, today)
    if fmt == "json":
        _emit_json(result.to_dict())
    else:
        click.echo(_result_text(result, lang))
    sys.exit(1 if result.refused else 0)
