"""Password-protected workbooks: encrypt, decrypt, wrong passwords, files, LibreOffice."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import msoffcrypto
import olefile
import openpyxl
import pytest

from memory_keyring import MemoryKeyring, using_keyring
from sheetreg import crypto
from sheetreg.errors import SheetregError
from sheetreg.secrets import WORKBOOK_PASSWORD, require_secret, set_secret

from conftest import build_register, client, libreoffice_open_with_password

PASSWORD = "Kevät-2026!"


@pytest.fixture
def register_bytes(tmp_path: Path) -> bytes:
    """A small real register, as the bytes of its .xlsx package."""
    path = build_register(tmp_path / "plain.xlsx", clients=[client()])
    return path.read_bytes()


def test_round_trip(register_bytes):
    """encrypt then decrypt gives back the very same package bytes."""
    encrypted = crypto.encrypt(register_bytes, PASSWORD)
    assert encrypted != register_bytes
    assert crypto.is_encrypted(encrypted)
    assert not crypto.is_encrypted(register_bytes)
    assert crypto.decrypt(encrypted, PASSWORD) == register_bytes


def test_writes_agile_encryption(register_bytes):
    """The encrypted file uses agile encryption (AES), as Excel 2010 and later write."""
    office = msoffcrypto.OfficeFile(io.BytesIO(crypto.encrypt(register_bytes, PASSWORD)))
    assert office.type == "agile"
    assert office.info["passwordKeyBits"] == 256


def test_plain_text_not_in_encrypted_file(register_bytes):
    """No client value can be found in the encrypted bytes."""
    encrypted = crypto.encrypt(register_bytes, PASSWORD)
    assert b"Virtanen" not in encrypted
    assert "Virtanen".encode("utf-16-le") not in encrypted


def test_wrong_password_names_the_file_only(register_bytes):
    """A wrong password raises WrongPassword naming the file, never the passwords."""
    encrypted = crypto.encrypt(register_bytes, PASSWORD)
    with pytest.raises(crypto.WrongPassword) as caught:
        crypto.decrypt(encrypted, "väärä", source="rekisteri.xlsx")
    message = str(caught.value)
    assert message.startswith("rekisteri.xlsx:")
    assert "väärä" not in message
    assert PASSWORD not in message


def test_decrypt_refuses_a_plain_file(register_bytes):
    """Decrypting a file that is not encrypted is a clear error."""
    with pytest.raises(SheetregError, match="not a password-protected"):
        crypto.decrypt(register_bytes, PASSWORD, source="plain.xlsx")


def test_damaged_encrypted_file(tmp_path, register_bytes):
    """A package changed after encryption fails its integrity check: damaged, not wrong key."""
    path = tmp_path / "rikki.xlsx"
    path.write_bytes(crypto.encrypt(register_bytes, PASSWORD))
    with olefile.OleFileIO(str(path), write_mode=True) as ole:
        package = bytearray(ole.openstream("EncryptedPackage").read())
        package[len(package) // 2] ^= 0xFF
        ole.write_stream("EncryptedPackage", bytes(package))
    with pytest.raises(SheetregError, match=r"rikki\.xlsx: .*damaged") as caught:
        crypto.decrypt(path.read_bytes(), PASSWORD, source="rikki.xlsx")
    assert not isinstance(caught.value, crypto.WrongPassword)


def test_encrypt_refuses_non_office_and_empty_password(register_bytes):
    """Only OOXML packages can be encrypted, and only with a non-empty password."""
    with pytest.raises(SheetregError, match="Office Open XML"):
        crypto.encrypt(b'{"json": true}', PASSWORD, source="ote.json")
    with pytest.raises(SheetregError, match="empty password"):
        crypto.encrypt(register_bytes, "")


def test_is_encrypted_on_odd_input():
    """is_encrypted is False for empty, random and truncated OLE input."""
    assert not crypto.is_encrypted(b"")
    assert not crypto.is_encrypted(b"hello")
    assert not crypto.is_encrypted(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 100)


def test_encrypt_file_and_decrypt_file(tmp_path, register_bytes):
    """The file helpers work in place or to another path, owner-readable only on POSIX."""
    src = tmp_path / "ote.xlsx"
    src.write_bytes(register_bytes)
    assert crypto.encrypt_file(src, PASSWORD) == src
    assert crypto.is_encrypted(src.read_bytes())
    if os.name == "posix":
        assert src.stat().st_mode & 0o777 == 0o600
    with pytest.raises(SheetregError, match="already password-protected"):
        crypto.encrypt_file(src, PASSWORD)
    out = crypto.decrypt_file(src, PASSWORD, tmp_path / "auki.xlsx")
    assert out.read_bytes() == register_bytes
    assert crypto.is_encrypted(src.read_bytes())
    assert not list(tmp_path.glob(".*.tmp"))


def test_decrypt_file_wrong_password_leaves_files(tmp_path, register_bytes):
    """A wrong password changes nothing on disk."""
    folder = tmp_path / "otteet"
    folder.mkdir()
    src = folder / "ote.xlsx"
    src.write_bytes(crypto.encrypt(register_bytes, PASSWORD))
    before = src.read_bytes()
    with pytest.raises(crypto.WrongPassword, match=r"ote\.xlsx"):
        crypto.decrypt_file(src, "väärä", folder / "auki.xlsx")
    assert src.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["ote.xlsx"]


def test_missing_file(tmp_path):
    """A missing source file is a clean error."""
    with pytest.raises(SheetregError, match="not found"):
        crypto.encrypt_file(tmp_path / "ei.xlsx", PASSWORD)


def test_round_trip_with_password_from_test_keyring(tmp_path, register_bytes):
    """The workbook password from a (test) keyring opens the encrypted register."""
    path = tmp_path / "rekisteri.xlsx"
    path.write_bytes(register_bytes)
    with using_keyring(MemoryKeyring()):
        set_secret(WORKBOOK_PASSWORD, path, PASSWORD)
        crypto.encrypt_file(path, require_secret(WORKBOOK_PASSWORD, path))
        plain = crypto.decrypt(path.read_bytes(), require_secret(WORKBOOK_PASSWORD, path))
    book = openpyxl.load_workbook(io.BytesIO(plain))
    assert book.worksheets[0]["B2"].value == "Aino"
    assert zipfile.ZipFile(io.BytesIO(plain)).testzip() is None


# --- LibreOffice ------------------------------------------------------------------------------


@pytest.mark.libreoffice
def test_libreoffice_opens_encrypted_register_with_password(tmp_path, register_bytes):
    """LibreOffice opens the encrypted register with the password, and not without it."""
    path = tmp_path / "salattu.xlsx"
    path.write_bytes(crypto.encrypt(register_bytes, PASSWORD))
    work = tmp_path / "lo"
    work.mkdir()
    csv = libreoffice_open_with_password(path, PASSWORD, work)
    assert csv is not None
    text = csv.read_text(encoding="utf-8", errors="replace")
    assert "A1001" in text
    assert "Aino" in text
    assert libreoffice_open_with_password(path, "väärä", work) is None
