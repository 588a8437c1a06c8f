"""Secrets in the keyring: per-workbook names, refusal of unsafe backends, the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from keyring.backends import chainer, fail, null
from keyrings.alt.file import EncryptedKeyring, PlaintextKeyring

from memory_keyring import MemoryKeyring, using_keyring
from sheetreg import secrets
from sheetreg.errors import SheetregError
from sheetreg.secrets import (
    ALLOW_PLAINTEXT_ENV,
    SERVICE,
    SMTP_PASSWORD,
    WORKBOOK_PASSWORD,
    KeyringRefused,
    delete_secret,
    get_secret,
    require_secret,
    secret_username,
    set_secret,
)


@pytest.fixture(autouse=True)
def memory_keyring(monkeypatch: pytest.MonkeyPatch):
    """Every test here runs against an in-memory keyring, never the user's."""
    monkeypatch.delenv(ALLOW_PLAINTEXT_ENV, raising=False)
    with using_keyring(MemoryKeyring()) as backend:
        yield backend


@pytest.fixture
def cli() -> Iterator[click.Group]:
    """The sheetreg CLI (it registers `secret` and `schedule` itself)."""
    from sheetreg.cli import cli as group

    yield group


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    """An existing file to attach secrets to (its content does not matter here)."""
    path = tmp_path / "rekisteri.xlsx"
    path.write_bytes(b"PK")
    return path


def plaintext_keyring(tmp_path: Path) -> PlaintextKeyring:
    """keyrings.alt's plaintext backend, pointed at a file in tmp_path."""
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring_pass.cfg")
    return backend


def test_round_trip_per_workbook(workbook, tmp_path, memory_keyring):
    """A secret is stored under service sheetreg and a username naming the workbook."""
    other = tmp_path / "toinen.xlsx"
    set_secret(WORKBOOK_PASSWORD, workbook, "salasana-1")
    set_secret(WORKBOOK_PASSWORD, other, "salasana-2")
    assert get_secret(WORKBOOK_PASSWORD, workbook) == "salasana-1"
    assert get_secret(WORKBOOK_PASSWORD, other) == "salasana-2"
    assert get_secret(SMTP_PASSWORD, workbook) is None
    key = (SERVICE, f"workbook-password:{workbook.resolve()}")
    assert memory_keyring.passwords[key] == "salasana-1"


def test_username_is_absolute(workbook, monkeypatch):
    """A relative path and the absolute path of one workbook name the same secret."""
    monkeypatch.chdir(workbook.parent)
    assert secret_username(SMTP_PASSWORD, "rekisteri.xlsx") == secret_username(
        SMTP_PASSWORD, workbook
    )


def test_delete(workbook):
    """delete_secret removes a stored secret and says False when there was none."""
    set_secret(SMTP_PASSWORD, workbook, "x")
    assert delete_secret(SMTP_PASSWORD, workbook) is True
    assert get_secret(SMTP_PASSWORD, workbook) is None
    assert delete_secret(SMTP_PASSWORD, workbook) is False


def test_unknown_name_and_empty_secret(workbook):
    """Only the two known secret names exist, and an empty secret is not stored."""
    with pytest.raises(SheetregError, match="unknown secret"):
        set_secret("root-password", workbook, "x")
    with pytest.raises(SheetregError, match="empty"):
        set_secret(WORKBOOK_PASSWORD, workbook, "")


def test_require_secret_tells_how_to_store(workbook):
    """A missing secret gives the command that stores it."""
    with pytest.raises(SheetregError, match="sheetreg secret set workbook-password"):
        require_secret(WORKBOOK_PASSWORD, workbook)


def test_plaintext_backend_refused(workbook, tmp_path):
    """keyrings.alt's PlaintextKeyring is refused, and nothing is written to its file."""
    backend = plaintext_keyring(tmp_path)
    with using_keyring(backend), pytest.raises(KeyringRefused, match=ALLOW_PLAINTEXT_ENV):
        set_secret(WORKBOOK_PASSWORD, workbook, "salasana")
    assert not Path(backend.file_path).exists()


def test_plaintext_backend_allowed_explicitly(workbook, tmp_path, monkeypatch):
    """The environment variable (or allow_plaintext=True) lets a plaintext keyring be used."""
    backend = plaintext_keyring(tmp_path)
    with using_keyring(backend):
        set_secret(WORKBOOK_PASSWORD, workbook, "salasana", allow_plaintext=True)
        with pytest.raises(KeyringRefused):
            get_secret(WORKBOOK_PASSWORD, workbook)
        monkeypatch.setenv(ALLOW_PLAINTEXT_ENV, "1")
        assert get_secret(WORKBOOK_PASSWORD, workbook) == "salasana"
        with pytest.raises(KeyringRefused):
            get_secret(WORKBOOK_PASSWORD, workbook, allow_plaintext=False)


@pytest.mark.parametrize("backend", [fail.Keyring(), null.Keyring()], ids=["fail", "null"])
def test_storeless_backends_refused_even_when_allowed(workbook, backend, monkeypatch):
    """The fail and null backends store nothing; no setting makes them acceptable."""
    monkeypatch.setenv(ALLOW_PLAINTEXT_ENV, "1")
    with using_keyring(backend), pytest.raises(KeyringRefused, match="no usable keyring"):
        set_secret(WORKBOOK_PASSWORD, workbook, "x")


def test_chain_with_plaintext_member_refused(workbook, tmp_path, monkeypatch):
    """A chained keyring that may fall through to the plaintext file is refused too."""
    members = [MemoryKeyring(), plaintext_keyring(tmp_path)]
    monkeypatch.setattr(chainer.ChainerBackend, "backends", members)
    with using_keyring(chainer.ChainerBackend()), pytest.raises(KeyringRefused):
        get_secret(WORKBOOK_PASSWORD, workbook)


def test_encrypted_file_backend_accepted(tmp_path):
    """keyrings.alt's encrypted file backend is not refused (only the plaintext one is)."""
    # Made without __init__, which needs pycryptodome; only its class is judged here.
    backend = object.__new__(EncryptedKeyring)
    backend.file_path = str(tmp_path / "crypted_pass.cfg")
    with using_keyring(backend):
        assert secrets.checked_backend() is backend


def test_backend_errors_become_clean_errors(workbook):
    """A backend that fails (a locked keyring) gives a one-line error without its message."""

    class Locked(MemoryKeyring):
        def get_password(self, service: str, username: str) -> str | None:
            raise RuntimeError("secret-service said: aino.virtanen@example.fi")

    with using_keyring(Locked()), pytest.raises(SheetregError) as caught:
        get_secret(WORKBOOK_PASSWORD, workbook)
    assert "RuntimeError" in str(caught.value)
    assert "aino" not in str(caught.value)


def test_cli_set_prompts_twice_hidden(workbook, memory_keyring, cli):
    """`secret set` asks twice without echoing and stores the secret."""
    result = CliRunner().invoke(
        cli,
        ["secret", "set", "workbook-password", "--workbook", str(workbook)],
        input="huippusalainen\nhuippusalainen\n",
    )
    assert result.exit_code == 0, result.output
    assert "huippusalainen" not in result.output
    assert get_secret(WORKBOOK_PASSWORD, workbook) == "huippusalainen"


def test_cli_set_mismatch_asks_again(workbook, cli):
    """A mistyped confirmation is asked again; the confirmed secret is the one stored."""
    result = CliRunner().invoke(
        cli,
        ["secret", "set", "smtp-password", "--workbook", str(workbook)],
        input="eka\ntoka\noikea\noikea\n",
    )
    assert result.exit_code == 0, result.output
    assert get_secret(SMTP_PASSWORD, workbook) == "oikea"


def test_cli_set_from_stdin_and_delete(workbook, cli):
    """`--stdin` reads one line for scripts; `secret delete` removes it; json output works."""
    runner = CliRunner()
    args = ["secret", "set", "smtp-password", "--workbook", str(workbook), "--stdin"]
    result = runner.invoke(cli, [*args, "--format", "json"], input="pa ss\r\n")
    assert result.exit_code == 0, result.output
    assert '"stored": true' in result.output
    assert get_secret(SMTP_PASSWORD, workbook) == "pa ss"
    deleted = runner.invoke(cli, ["secret", "delete", "smtp-password", "--workbook", str(workbook)])
    assert deleted.exit_code == 0
    assert get_secret(SMTP_PASSWORD, workbook) is None


def test_cli_refuses_plaintext_before_asking(workbook, tmp_path, cli):
    """With a plaintext keyring the CLI stops with exit 2 before prompting for anything."""
    with using_keyring(plaintext_keyring(tmp_path)):
        result = CliRunner().invoke(
            cli, ["secret", "set", "workbook-password", "--workbook", str(workbook)], input=""
        )
    assert result.exit_code == 2
    assert "salasana / password" not in result.output
    assert ALLOW_PLAINTEXT_ENV in result.output


def test_cli_unknown_secret_name(workbook, cli):
    """An unknown secret name is a usage error."""
    result = CliRunner().invoke(cli, ["secret", "set", "x", "--workbook", str(workbook)])
    assert result.exit_code == 2
