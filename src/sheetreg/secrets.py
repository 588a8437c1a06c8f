"""Secrets in the operating system's keyring: the workbook password and the SMTP password.

Each secret is stored per workbook, under the service ``sheetreg`` and the username
``<name>:<absolute path of the workbook>`` (for example
``workbook-password:/home/terapeutti/Asiakkaat/asiakasrekisteri.xlsx``; on Windows the path is
case-folded as the file system does). Moving or renaming the workbook therefore means storing
its secrets again (``sheetreg secret set``).

sheetreg refuses a keyring that would not keep a secret safe:

- keyrings.alt's ``PlaintextKeyring`` writes passwords to a file in clear text, and the
  ``keyring`` package silently picks it on a Linux machine without a desktop keyring; it is
  refused unless the user allows it explicitly, with the environment variable
  ``SHEETREG_ALLOW_PLAINTEXT_KEYRING=1`` or ``allow_plaintext_keyring = true`` in the weekly
  job's configuration;
- the ``fail`` and ``null`` backends store nothing; they are always refused.

Messages name the secret, the workbook and the keyring backend, never a password.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Final

from sheetreg.errors import SheetregError

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend

SERVICE: Final = "sheetreg"
WORKBOOK_PASSWORD: Final = "workbook-password"
SMTP_PASSWORD: Final = "smtp-password"
SECRET_NAMES: Final = (WORKBOOK_PASSWORD, SMTP_PASSWORD)
ALLOW_PLAINTEXT_ENV: Final = "SHEETREG_ALLOW_PLAINTEXT_KEYRING"

# Backends that keep nothing at all: allowing them would lose the secret silently.
_STORELESS: Final = frozenset({"keyring.backends.fail.Keyring", "keyring.backends.null.Keyring"})


class KeyringRefused(SheetregError):
    """The keyring backend would not keep a secret safe (exit 2)."""


def secret_username(name: str, workbook: Path | str) -> str:
    """The keyring username of secret ``name`` for ``workbook``: ``<name>:<absolute path>``."""
    _check_name(name)
    absolute = os.path.normcase(Path(workbook).expanduser().resolve())
    return f"{name}:{absolute}"


def plaintext_allowed(allow: bool | None = None) -> bool:
    """``allow`` if given, else whether ``SHEETREG_ALLOW_PLAINTEXT_KEYRING`` is set to a yes."""
    if allow is not None:
        return allow
    return os.environ.get(ALLOW_PLAINTEXT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def backend_name(backend: KeyringBackend) -> str:
    """The dotted class name of a keyring backend, for messages."""
    cls = type(backend)
    return f"{cls.__module__}.{cls.__qualname__}"


def checked_backend(*, allow_plaintext: bool | None = None) -> KeyringBackend:
    """The active keyring backend, after refusing one that would not keep a secret safe.

    A chained backend is refused if any backend in its chain is refused, because the chain
    may read from or write to any of them.
    """
    import keyring
    from keyring.backends.chainer import ChainerBackend

    backend = keyring.get_keyring()
    chain = list(backend.backends) if isinstance(backend, ChainerBackend) else [backend]
    if not chain:
        raise _no_keyring(backend_name(backend))
    for member in chain:
        name = backend_name(member)
        if name in _STORELESS:
            raise _no_keyring(name)
        if _is_plaintext(member) and not plaintext_allowed(allow_plaintext):
            raise KeyringRefused(
                f"the keyring backend {name} stores passwords unencrypted in a file; sheetreg "
                "will not use it. Install and unlock a real keyring (GNOME Keyring or KWallet "
                "via Secret Service, macOS Keychain, Windows Credential Manager), or allow it "
                f"explicitly with {ALLOW_PLAINTEXT_ENV}=1. / Avainnippu tallentaa salasanat "
                "salaamattomina; sheetreg ei käytä sitä ilman nimenomaista lupaa."
            )
    return backend


def get_secret(
    name: str, workbook: Path | str, *, allow_plaintext: bool | None = None
) -> str | None:
    """The secret ``name`` stored for ``workbook``, or None when none is stored."""
    username = secret_username(name, workbook)
    backend = checked_backend(allow_plaintext=allow_plaintext)
    try:
        return backend.get_password(SERVICE, username)
    except Exception as exc:  # every backend raises its own kind; keyring.errors is not all
        raise _keyring_failed("read", name, workbook, exc) from None


def require_secret(name: str, workbook: Path | str, *, allow_plaintext: bool | None = None) -> str:
    """The secret ``name`` stored for ``workbook``; a clear error telling how to store it."""
    secret = get_secret(name, workbook, allow_plaintext=allow_plaintext)
    if secret is None:
        raise SheetregError(
            f"no {name} is stored in the keyring for {workbook}. Store it with: "
            f'sheetreg secret set {name} --workbook "{workbook}" / '
            "salaisuutta ei ole tallennettu avainnippuun."
        )
    return secret


def set_secret(
    name: str, workbook: Path | str, secret: str, *, allow_plaintext: bool | None = None
) -> None:
    """Store ``secret`` as ``name`` for ``workbook``, replacing any stored before."""
    if not secret:
        raise SheetregError(f"the {name} is empty; nothing was stored. / Tyhjä salasana.")
    username = secret_username(name, workbook)
    backend = checked_backend(allow_plaintext=allow_plaintext)
    try:
        backend.set_password(SERVICE, username, secret)
    except Exception as exc:
        raise _keyring_failed("store", name, workbook, exc) from None


def delete_secret(name: str, workbook: Path | str, *, allow_plaintext: bool | None = None) -> bool:
    """Delete the secret ``name`` of ``workbook``; False when none was stored."""
    from keyring.errors import PasswordDeleteError

    username = secret_username(name, workbook)
    backend = checked_backend(allow_plaintext=allow_plaintext)
    try:
        if backend.get_password(SERVICE, username) is None:
            return False
        backend.delete_password(SERVICE, username)
    except PasswordDeleteError:
        return False
    except Exception as exc:
        raise _keyring_failed("delete", name, workbook, exc) from None
    return True


def _check_name(name: str) -> None:
    if name not in SECRET_NAMES:
        raise SheetregError(
            f"unknown secret {name!r}; use one of: {', '.join(SECRET_NAMES)}. / "
            "Tuntematon salaisuus."
        )


def _is_plaintext(backend: KeyringBackend) -> bool:
    # keyrings.alt.file.PlaintextKeyring, and any subclass or look-alike of it.
    return any(
        cls.__module__.startswith("keyrings.alt") and "plaintext" in cls.__name__.lower()
        for cls in type(backend).__mro__
    )


def _no_keyring(name: str) -> KeyringRefused:
    return KeyringRefused(
        f"no usable keyring: the backend {name} stores nothing. Install and unlock a keyring "
        "(GNOME Keyring or KWallet via Secret Service, macOS Keychain, Windows Credential "
        "Manager). / Käytettävää avainnippua ei löydy."
    )


def _keyring_failed(action: str, name: str, workbook: Path | str, exc: Exception) -> SheetregError:
    # The backend's own message is left out: it might echo what it was given.
    return SheetregError(
        f"the keyring could not {action} the {name} for {workbook} ({type(exc).__name__}); "
        "is the keyring unlocked? / Avainnippu ei vastannut; onko se avattu?"
    )
