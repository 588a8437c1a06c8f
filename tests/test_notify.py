"""The summary e-mail, sent to a real SMTP server on loopback with STARTTLS and a login."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from memory_keyring import MemoryKeyring, using_keyring
from sheetreg.errors import SheetregError
from sheetreg.notify import NotifyConfig, send_summary, summary_message
from sheetreg.secrets import ALLOW_PLAINTEXT_ENV, SMTP_PASSWORD, set_secret

from conftest import GOOD_CLIENT

USER = "terapeutti"
PASSWORD = "smtp-Sälasana-1"  # non-ASCII on purpose: Finnish passwords have them
COUNTS = {"errors": 2, "warnings": 5, "requests_overdue": 1, "awaiting_approval": 3}


@pytest.fixture(autouse=True)
def memory_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """Every test here runs against an in-memory keyring, never the user's."""
    monkeypatch.delenv(ALLOW_PLAINTEXT_ENV, raising=False)
    with using_keyring(MemoryKeyring()) as backend:
        yield backend


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files."""
    folder = tmp_path_factory.mktemp("cert")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sheetreg test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "server.pem", folder / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Inbox:
    """What the loopback server received, and the logins it saw."""

    password: str = PASSWORD
    messages: list[dict[str, Any]] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            {
                "from": envelope.mail_from,
                "to": list(envelope.rcpt_tos),
                "data": envelope.content,
                "tls": session.ssl is not None,
                "authenticated": session.authenticated,
            }
        )
        return "250 OK"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login == USER.encode()
            and data.password == self.password.encode()
        )
        self.logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running loopback SMTP server."""

    inbox: Inbox
    port: int
    cafile: Path


def start_server(certificate: tuple[Path, Path], *, starttls: bool = True) -> Controller:
    """An aiosmtpd server on 127.0.0.1 that requires STARTTLS (when given) and a login."""
    inbox = Inbox()
    tls = None
    if starttls:
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(*certificate)
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=_free_port(),
        tls_context=tls,
        require_starttls=starttls,
        authenticator=inbox.authenticate,
        auth_required=starttls,
        auth_require_tls=starttls,
    )
    controller.start()
    return controller


@pytest.fixture
def smtp_server(certificate) -> Iterator[Server]:
    """A loopback SMTP server with STARTTLS required, for one test."""
    controller = start_server(certificate)
    try:
        yield Server(controller.handler, controller.port, certificate[0])
    finally:
        controller.stop()


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    """The workbook whose smtp-password is used."""
    path = tmp_path / "rekisteri.xlsx"
    path.write_bytes(b"PK")
    return path


def config_for(server: Server, workbook: Path, **changes: Any) -> NotifyConfig:
    """An enabled notification config pointing at the loopback server."""
    config = NotifyConfig(
        workbook=workbook,
        enabled=True,
        host="127.0.0.1",
        port=server.port,
        username=USER,
        sender="terapeutti@example.fi",
        recipients=("terapeutti@example.fi",),
        cafile=server.cafile,
        timeout_seconds=10,
    )
    return replace(config, **changes)


def test_summary_received_over_starttls_with_counts_only(smtp_server, workbook):
    """The server receives one message, over TLS and logged in, holding the counts only."""
    set_secret(SMTP_PASSWORD, workbook, PASSWORD)
    send_summary(config_for(smtp_server, workbook), COUNTS, "fi", today=dt.date(2026, 11, 25))
    assert [ok for _, ok in smtp_server.inbox.logins] == [True]
    [received] = smtp_server.inbox.messages
    assert received["tls"] and received["authenticated"]
    assert received["to"] == ["terapeutti@example.fi"]
    message = email.message_from_bytes(received["data"], policy=email.policy.default)
    body = message.get_content()
    assert message["Subject"] == "sheetreg: viikkoajo 25.11.2026"
    assert "Virheitä: 2" in " ".join(body.split())
    assert "Myöhässä olevia pyyntöjä: 1" in " ".join(body.split())
    raw = received["data"].decode("utf-8", errors="replace")
    for personal in ("client_id", "first_name", "last_name", "phone", "email", "street"):
        assert str(GOOD_CLIENT[personal]) not in raw
    assert str(workbook) not in raw
    assert PASSWORD not in raw


def test_english_summary(smtp_server, workbook):
    """lang en gives an English subject and labels."""
    set_secret(SMTP_PASSWORD, workbook, PASSWORD)
    send_summary(config_for(smtp_server, workbook), {"errors": 0}, "en", today=dt.date(2026, 1, 5))
    [received] = smtp_server.inbox.messages
    message = email.message_from_bytes(received["data"], policy=email.policy.default)
    assert message["Subject"] == "sheetreg: weekly run 2026-01-05"
    assert "Errors: 0" in message.get_content()


@pytest.mark.parametrize("wrong", ["vaara", "väärä"], ids=["ascii", "non-ascii"])
def test_wrong_password_is_a_clean_error(smtp_server, workbook, wrong):
    """A refused login raises a SheetregError without the password, and nothing is sent."""
    set_secret(SMTP_PASSWORD, workbook, wrong)
    with pytest.raises(SheetregError, match="refused the login") as caught:
        send_summary(config_for(smtp_server, workbook), COUNTS, "fi")
    assert wrong not in str(caught.value)
    assert smtp_server.inbox.messages == []


def test_ascii_password_login(smtp_server, workbook):
    """An ASCII password logs in through smtplib's own login."""
    smtp_server.inbox.password = "ascii-only-1"
    set_secret(SMTP_PASSWORD, workbook, "ascii-only-1")
    send_summary(config_for(smtp_server, workbook), COUNTS, "en")
    assert len(smtp_server.inbox.messages) == 1


def test_missing_password_in_keyring(smtp_server, workbook):
    """Without a stored smtp-password nothing is sent and the error says how to store it."""
    with pytest.raises(SheetregError, match="secret set smtp-password"):
        send_summary(config_for(smtp_server, workbook), COUNTS, "fi")
    assert smtp_server.inbox.messages == []


def test_untrusted_certificate_refused(smtp_server, workbook):
    """Without the server's CA the certificate fails verification and no password is sent."""
    set_secret(SMTP_PASSWORD, workbook, PASSWORD)
    with pytest.raises(SheetregError, match="could not be verified"):
        send_summary(config_for(smtp_server, workbook, cafile=None), COUNTS, "fi")
    assert smtp_server.inbox.logins == []


def test_server_without_starttls_refused(certificate, workbook):
    """A server that does not offer STARTTLS gets no password and no message."""
    controller = start_server(certificate, starttls=False)
    try:
        server = Server(controller.handler, controller.port, certificate[0])
        set_secret(SMTP_PASSWORD, workbook, PASSWORD)
        with pytest.raises(SheetregError, match="does not offer STARTTLS"):
            send_summary(config_for(server, workbook), COUNTS, "fi")
        assert server.inbox.logins == []
        assert server.inbox.messages == []
    finally:
        controller.stop()


def test_disabled_sends_nothing(smtp_server, workbook):
    """With enabled = false send_summary does nothing (and needs no password)."""
    send_summary(config_for(smtp_server, workbook, enabled=False), COUNTS, "fi")
    assert smtp_server.inbox.messages == []


@pytest.mark.parametrize(
    "counts",
    [
        {"Aino Virtanen": 1},
        {"errors": "A1001"},
        {"errors": 1.5},
        {"errors": -1},
        {"errors": True},
    ],
    ids=["name-as-key", "text-value", "float", "negative", "bool"],
)
def test_only_plain_counts_accepted(counts, tmp_path):
    """A key that is not a plain name, or a value that is not a count, is refused."""
    config = NotifyConfig(
        workbook=tmp_path / "r.xlsx",
        enabled=True,
        host="127.0.0.1",
        sender="a@example.fi",
        recipients=("a@example.fi",),
    )
    with pytest.raises(SheetregError, match="nothing was sent") as caught:
        summary_message(config, counts, "fi")
    assert "Aino" not in str(caught.value)
    assert "A1001" not in str(caught.value)


def test_failed_run_message_has_no_counts(tmp_path):
    """The failure notice says the run failed and points to the log, with nothing else."""
    config = NotifyConfig(
        workbook=tmp_path / "r.xlsx",
        enabled=True,
        host="h",
        sender="a@example.fi",
        recipients=("a@example.fi",),
    )
    message = summary_message(config, {}, "en", today=dt.date(2026, 11, 25), failed=True)
    assert message["Subject"] == "sheetreg: weekly run failed 2026-11-25"
    assert "log" in message.get_content()


def test_the_weekly_run_mails_its_counts_and_nothing_personal(smtp_server, tmp_path, monkeypatch):
    """The scheduler runs the real weekly job on a real register, then the loopback server
    receives its counts: no client ID, name, phone, e-mail, address or path."""
    from sheetreg.scheduler import ScheduleConfig, WeeklyScheduler

    from conftest import build_register, client

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    register = build_register(
        tmp_path / "rekisteri.xlsx",
        clients=[client(), client(client_id="A1002", end=dt.date(2026, 11, 1))],
    )
    set_secret(SMTP_PASSWORD, register, PASSWORD)
    config = ScheduleConfig(register, notify=config_for(smtp_server, register))
    scheduler = WeeklyScheduler(
        config,
        now=lambda: dt.datetime(2026, 11, 25, 8, 0),
        state_dir=tmp_path / "sched",
        log_dir=tmp_path / "log",
    )
    outcome = scheduler.run_once()
    assert outcome.status == "ok" and outcome.counts["clients"] == 2
    assert (tmp_path / "reports" / "hygiene-2026-11-25.html").is_file()
    [received] = smtp_server.inbox.messages
    message = email.message_from_bytes(received["data"], policy=email.policy.default)
    body = " ".join(message.get_content().split())
    assert "Asiakkaita: 2" in body and "Poisto odottaa hyväksyntää: 1" in body
    raw = received["data"].decode("utf-8", errors="replace")
    for personal in ("first_name", "last_name", "phone", "email", "street"):
        assert str(GOOD_CLIENT[personal]) not in raw
    assert "A1001" not in raw and "A1002" not in raw and str(tmp_path) not in raw
