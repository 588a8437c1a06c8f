"""Password-protected (encrypted) Office files, with msoffcrypto-tool.

Excel's "Encrypt with password" wraps the .xlsx package in an OLE compound file holding an
``EncryptionInfo`` and an ``EncryptedPackage`` stream (ECMA-376 / MS-OFFCRYPTO). :func:`decrypt`
opens both the agile encryption of Excel 2010 and later and the older "standard" encryption;
:func:`encrypt` always writes agile encryption (AES-256, SHA-512, 100,000 spins), which Excel
2010 and later and LibreOffice open with the password.

Only OOXML packages (.xlsx, .xlsm, .docx, ...) can be encrypted this way: an .html or .json
file is refused, because nothing but a conversion would open it again.

Messages name the file, never the password or anything inside the file.
"""

from __future__ import annotations

import io
import os
import secrets
import tempfile
import zipfile
from pathlib import Path

from sheetreg.errors import SheetregError

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Lower-case letters and digits that cannot be mistaken for one another when copied by hand
# or read out: no 0/o and no 1/l/i.
_READABLE = "23456789abcdefghjkmnpqrstuvwxyz"


class WrongPassword(SheetregError):
    """The password does not open the encrypted file (exit 2)."""


def is_encrypted(data: bytes) -> bool:
    """True when ``data`` is an encrypted Office file (an OLE file with encryption info)."""
    if not data.startswith(_OLE_MAGIC):
        return False
    import msoffcrypto
    from msoffcrypto.exceptions import FileFormatError

    try:
        office = msoffcrypto.OfficeFile(io.BytesIO(data))
        return bool(office.is_encrypted())
    except (FileFormatError, OSError, ValueError, KeyError, IndexError):
        return False


def decrypt(data: bytes, password: str, *, source: Path | str = "the workbook") -> bytes:
    """The plain package inside the encrypted file ``data``, opened with ``password``.

    ``source`` names the file in messages. A wrong password raises :class:`WrongPassword`;
    a file that is not an encrypted Office file raises :class:`SheetregError`.
    """
    import msoffcrypto
    from msoffcrypto import exceptions

    if not is_encrypted(data):
        raise SheetregError(f"{source}: is not a password-protected Office file.")
    if not password:
        raise WrongPassword(f"{source}: no password given for the encrypted file.")
    damaged = SheetregError(
        f"{source}: the encrypted file cannot be decrypted; it may be damaged or use an "
        "unsupported encryption. / Salattua tiedostoa ei voi avata."
    )
    try:
        office = msoffcrypto.OfficeFile(io.BytesIO(data))
        office.load_key(password=password, verify_password=True)
    except exceptions.InvalidKeyError:
        raise WrongPassword(
            f"{source}: the password does not open this file (the keyring holds another one?). "
            "/ Salasana ei avaa tiedostoa."
        ) from None
    except (exceptions.DecryptionError, exceptions.FileFormatError, OSError, ValueError):
        raise damaged from None
    out = io.BytesIO()
    try:
        # Agile encryption carries an HMAC of the package: check it, so a damaged file is
        # reported as damaged instead of handed on. The older encryption has none.
        office.decrypt(out, **({"verify_integrity": True} if _is_agile(office) else {}))
    except (exceptions.InvalidKeyError, exceptions.DecryptionError, OSError, ValueError):
        # The password was verified above: a failure now is a damaged package.
        raise damaged from None
    return out.getvalue()


def new_password(groups: int = 5, size: int = 4) -> str:
    """A new random password that is easy to read out and type: ``groups`` groups of ``size``
    characters joined by dashes, e.g. ``k7mq-2xhp-9frt-wd4c-b8ne`` (five groups of four: about
    99 bits from :mod:`secrets`)."""
    return "-".join("".join(secrets.choice(_READABLE) for _ in range(size)) for _ in range(groups))


def encrypt(data: bytes, password: str, *, source: Path | str = "the file") -> bytes:
    """``data``, an OOXML package (.xlsx, .xlsm, .docx), encrypted with ``password`` (agile)."""
    from msoffcrypto import exceptions
    from msoffcrypto.format.ooxml import OOXMLFile

    if not password:
        raise SheetregError(f"{source}: an empty password would not protect anything.")
    if not _is_ooxml(data):
        raise SheetregError(
            f"{source}: only Office Open XML files (.xlsx, .xlsm, .docx) can be encrypted with "
            "a password; this one is not one. / Vain Office-tiedostot voi salata salasanalla."
        )
    out = io.BytesIO()
    try:
        OOXMLFile(io.BytesIO(data)).encrypt(password, out)
    except (exceptions.EncryptionError, exceptions.FileFormatError) as exc:
        raise SheetregError(
            f"{source}: cannot be encrypted ({type(exc).__name__}). / Tiedostoa ei voi salata."
        ) from None
    return out.getvalue()


def encrypt_file(src: Path | str, password: str, dest: Path | str | None = None) -> Path:
    """Encrypt the OOXML file ``src`` into ``dest`` (default: ``src`` itself); returns ``dest``.

    The encrypted file is written to a temporary file beside ``dest`` and moved into place, so
    ``dest`` is either the old file or the whole new one. On POSIX it is readable by its owner
    only, as extracts are.
    """
    src = Path(src)
    target = Path(dest) if dest is not None else src
    data = _read(src)
    if is_encrypted(data):
        raise SheetregError(f"{src}: is already password-protected. / Tiedosto on jo salattu.")
    _atomic_write(target, encrypt(data, password, source=src))
    return target


def decrypt_file(src: Path | str, password: str, dest: Path | str | None = None) -> Path:
    """Decrypt the encrypted file ``src`` into ``dest`` (default: ``src`` itself); returns it."""
    src = Path(src)
    target = Path(dest) if dest is not None else src
    _atomic_write(target, decrypt(_read(src), password, source=src))
    return target


def _is_agile(office: object) -> bool:
    return getattr(office, "type", None) == "agile"


def _is_ooxml(data: bytes) -> bool:
    if not data.startswith(b"PK"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as package:
            return "[Content_Types].xml" in package.namelist()
    except zipfile.BadZipFile:
        return False


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SheetregError(f"{path}: file not found / tiedostoa ei löydy.") from None
    except OSError as exc:
        raise SheetregError(f"{path}: cannot be read ({exc.strerror}).") from None


def _atomic_write(path: Path, data: bytes) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if os.name == "posix":
            Path(name).chmod(0o600)
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
