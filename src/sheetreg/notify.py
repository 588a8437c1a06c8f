"""The optional e-mail after each weekly run: counts only, over SMTP with STARTTLS.

The message holds numbers and their labels, nothing else: no client names, IDs, e-mail
addresses, file paths or cell texts. :func:`send_summary` enforces it: every count must be a
non-negative integer under a plain lower-case key (``errors``, ``requests_overdue``), so a name
cannot slip in as a value or a key.

The connection is always upgraded with STARTTLS and the server's certificate verified (the
system's certificate authorities, or ``cafile`` for a server with its own authority) before the
password is sent. The password is the ``smtp-password`` secret stored in the keyring for the
workbook (``sheetreg secret set smtp-password --workbook PATH``); the configuration file holds
no secret.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sheetreg.errors import SheetregError
from sheetreg.secrets import SMTP_PASSWORD, require_secret

if TYPE_CHECKING:  # smtplib and email are imported when a message is made: a run without
    import smtplib  # e-mail (and the report, which shows LABELS) does without them
    from email.message import EmailMessage

DEFAULT_PORT = 587
_COUNT_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ADDRESS = re.compile(r"[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+")

# Labels of the counts the weekly job reports; any other key is shown as it is.
LABELS: dict[str, tuple[str, str]] = {
    "clients": ("Asiakkaita", "Clients"),
    "active": ("Aktiivisia asiakkuuksia", "Active relationships"),
    "ending": ("Päättymässä", "Ending"),
    "ended": ("Päättyneitä asiakkuuksia", "Ended relationships"),
    "ended_since_last_run": ("Päättyneet edellisen ajon jälkeen", "Ended since the last run"),
    "awaiting_approval": ("Poisto odottaa hyväksyntää", "Erasures awaiting approval"),
    "approved": ("Hyväksyttyjä poistoja", "Approved erasures"),
    "blocked": ("Säilytys estää poiston", "Erasures blocked by a hold"),
    "holds": ("Voimassa olevia säilytyksiä", "Holds in force"),
    "erased": ("Poistettuja", "Erased"),
    "erasures": ("Tällä ajolla poistettuja", "Erased in this run"),
    "errors": ("Virheitä", "Errors"),
    "warnings": ("Varoituksia", "Warnings"),
    "findings": ("Löydöksiä", "Findings"),
    "requests_open": ("Avoimia pyyntöjä", "Open requests"),
    "requests_due_soon": ("Pyyntöjä, määräaika pian", "Requests due soon"),
    "requests_overdue": ("Myöhässä olevia pyyntöjä", "Overdue requests"),
    "extracts": ("Tehtyjä otteita", "Extracts made"),
    "recipients_to_notify": ("Vastaanottajia ilmoitettavana", "Recipients to notify"),
    "erasures_refused": ("Estettyjä poistoja", "Erasures refused"),
    "verification_failed": ("Epäonnistuneita varmennuksia", "Failed verifications"),
    "cells_written": ("Kirjoitettuja soluja", "Cells written"),
}


@dataclass(frozen=True)
class NotifyConfig:
    """Where the summary e-mail goes and how; the SMTP password is in the keyring."""

    workbook: Path  # whose smtp-password secret is used
    enabled: bool = False
    host: str = ""
    port: int = DEFAULT_PORT
    username: str = ""  # empty: the server takes mail without logging in
    sender: str = ""
    recipients: tuple[str, ...] = ()
    cafile: Path | None = None  # a certificate authority file for a server with its own CA
    timeout_seconds: float = 30.0
    allow_plaintext_keyring: bool | None = None  # None: the environment decides

    def check(self, source: str = "[notify]") -> None:
        """Refuse an enabled configuration that cannot send (nothing secret in the message)."""
        if not self.host:
            raise SheetregError(f"{source}: smtp_host is empty.")
        if not 0 < self.port < 65536:
            raise SheetregError(f"{source}: smtp_port must be between 1 and 65535.")
        if not _ADDRESS.fullmatch(self.sender):
            raise SheetregError(f"{source}: sender must be one e-mail address.")
        if not self.recipients:
            raise SheetregError(f"{source}: recipients is empty.")
        if not all(_ADDRESS.fullmatch(r) for r in self.recipients):
            raise SheetregError(f"{source}: every recipient must be one e-mail address.")
        if self.cafile is not None and not self.cafile.is_file():
            raise SheetregError(f"{source}: cafile {self.cafile} does not exist.")


def summary_message(
    config: NotifyConfig,
    counts: Mapping[str, int],
    lang: str,
    *,
    today: dt.date | None = None,
    failed: bool = False,
) -> EmailMessage:
    """The summary e-mail: a subject with the date, one line per count, nothing else."""
    checked = _checked_counts(counts)
    fi = lang == "fi"
    day = today or dt.date.today()
    date_text = f"{day.day}.{day.month}.{day.year}" if fi else day.isoformat()
    if failed:
        subject = (
            f"sheetreg: viikkoajo epäonnistui {date_text}"
            if fi
            else (f"sheetreg: weekly run failed {date_text}")
        )
        head = (
            "Viikkoajo ei onnistunut. Syy on sheetregin lokissa (docs/weekly-job.md kertoo missä)."
            if fi
            else "The weekly run did not succeed. The reason is in sheetreg's log "
            "(docs/weekly-job.md says where)."
        )
    else:
        subject = f"sheetreg: viikkoajo {date_text}" if fi else f"sheetreg: weekly run {date_text}"
        head = "Viikkoajo on valmis." if fi else "The weekly run is done."
    lines = [head, ""]
    width = max((len(_label(key, fi)) for key in checked), default=0)
    lines += [f"{_label(key, fi) + ':':<{width + 1}} {value}" for key, value in checked.items()]
    lines += [
        "",
        "Tässä viestissä on vain lukumääriä. Yksityiskohdat ovat raportissa työkirjan vieressä "
        "(reports/)."
        if fi
        else "This message holds counts only. The details are in the report beside the "
        "workbook (reports/).",
    ]
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = config.sender
    message["To"] = ", ".join(config.recipients)
    message["Date"] = formatdate(localtime=True)
    # The sender's domain, not this machine's name, goes into the Message-ID.
    message["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2] or None)
    message.set_content("\n".join(lines) + "\n")
    return message


def send_summary(
    config: NotifyConfig,
    counts: Mapping[str, int],
    lang: str,
    *,
    today: dt.date | None = None,
    failed: bool = False,
) -> None:
    """E-mail the run's counts to the configured recipients; nothing when not enabled.

    Connects to ``host:port``, requires STARTTLS with a verified certificate, logs in with the
    keyring's ``smtp-password`` when a username is configured, and sends one plain-text message.
    Any failure raises :class:`SheetregError` naming the server, never the message's content.
    """
    if not config.enabled:
        return
    config.check()
    message = summary_message(config, counts, lang, today=today, failed=failed)
    password = None
    if config.username:
        password = require_secret(
            SMTP_PASSWORD, config.workbook, allow_plaintext=config.allow_plaintext_keyring
        )
    import smtplib
    import ssl

    server = f"{config.host}:{config.port}"
    try:
        context = ssl.create_default_context(
            cafile=str(config.cafile) if config.cafile is not None else None
        )
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise SheetregError(
                    f"the mail server {server} does not offer STARTTLS; the summary was not "
                    "sent unencrypted. / Palvelin ei tue salattua yhteyttä; viestiä ei lähetetty."
                )
            smtp.starttls(context=context)
            smtp.ehlo()
            if password is not None:
                _login(smtp, config.username, password)
            smtp.send_message(message)
    except SheetregError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise SheetregError(
            f"the mail server {server} refused the login (code {exc.smtp_code}); check the "
            "username and the smtp-password in the keyring. / Kirjautuminen epäonnistui."
        ) from None
    except ssl.SSLCertVerificationError:
        raise SheetregError(
            f"the certificate of the mail server {server} could not be verified; nothing was "
            "sent. / Palvelimen varmennetta ei voitu tarkistaa."
        ) from None
    except smtplib.SMTPResponseException as exc:
        raise SheetregError(
            f"the mail server {server} refused the summary (code {exc.smtp_code}). / "
            "Palvelin hylkäsi viestin."
        ) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise SheetregError(
            f"the summary could not be sent through {server} ({type(exc).__name__}). / "
            "Yhteenvetoa ei voitu lähettää."
        ) from None


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """Log in; a non-ASCII password (ä, ö) goes by AUTH PLAIN in UTF-8 (RFC 4616).

    smtplib encodes credentials as ASCII and would fail on a Finnish password.
    """
    try:
        (username + password).encode("ascii")
    except UnicodeEncodeError:
        mechanisms = smtp.esmtp_features.get("auth", "").upper().split()
        if "PLAIN" not in mechanisms:
            raise SheetregError(
                "the mail server does not offer AUTH PLAIN, which a password with non-ASCII "
                "letters needs; nothing was sent. / Palvelin ei tue ääkkösiä salasanassa."
            ) from None
        token = base64.b64encode(b"\0" + username.encode() + b"\0" + password.encode())
        code, response = smtp.docmd("AUTH", "PLAIN " + token.decode("ascii"))
        if code != 235:
            import smtplib

            raise smtplib.SMTPAuthenticationError(code, response) from None
        return
    smtp.login(username, password)


def _checked_counts(counts: Mapping[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in counts.items():
        if not isinstance(key, str) or not _COUNT_KEY.fullmatch(key):
            raise SheetregError(
                "a summary count has a key that is not a plain lower-case name; nothing was sent."
            )
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SheetregError(
                f"the summary count {key} is not a non-negative whole number; nothing was sent."
            )
        out[key] = value
    return out


def _label(key: str, fi: bool) -> str:
    if key in LABELS:
        return LABELS[key][0 if fi else 1]
    return key.replace("_", " ").capitalize()
