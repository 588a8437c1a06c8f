"""Password-protected registers end to end: read, validate, write, erase, extract, requests.

The workbook password comes from an in-memory test keyring (never the user's). The rule under
test everywhere: nothing plain of an encrypted register is written to disk, not even a
temporary file; what sheetreg writes back is encrypted with the same password.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner, Result
from keyring.backends import fail
from keyrings.alt.file import PlaintextKeyring

from memory_keyring import MemoryKeyring, using_keyring
from sheetreg import crypto
from sheetreg.cli import cli
from sheetreg.erasure import journal_path, read_journal
from sheetreg.errors import UnusableWorkbook, WriteRefused
from sheetreg.extract import make_extract
from sheetreg.pipeline import validate_path
from sheetreg.schema import CLIENTS, DISCLOSURES, ERASURE_LOG, INVOICES, REQUESTS
from sheetreg.secrets import ALLOW_PLAINTEXT_ENV, WORKBOOK_PASSWORD, set_secret
from sheetreg.validate import validate
from sheetreg.workbook import list_backups, load_package, read_register, write_cells

from conftest import TODAY, build_register, client, libreoffice_open_with_password

PASSWORD = "Kevät-2026!rekisteri"  # non-ASCII on purpose
ENDED = TODAY - dt.timedelta(days=30)
BERTTA = client(
    client_id="A1002",
    first_name="Bertta",
    last_name="Kallioniemi",
    phone="050 765 4321",
    email="bertta.kallioniemi@example.fi",
    street="Pispalan valtatie 9 B",
    postal_code="33250",
    end=ENDED,
)
BERTTA_VALUES = ["Bertta", "Kallioniemi", "765 4321", "bertta.kallioniemi", "Pispalan valtatie"]
ACCESS_REQUEST = {
    "request_id": "P1",
    "received": dt.date(2026, 11, 20),
    "client_id": "A1001",
    "type": "Tarkastus",
    "channel": "Sähköposti",
    "identity_verified": "Kyllä",
    "extended": "Ei",
    "status": "Avoin",
}


@pytest.fixture(autouse=True)
def keyring_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryKeyring]:
    """Every test here runs against an in-memory keyring, never the user's."""
    monkeypatch.delenv(ALLOW_PLAINTEXT_ENV, raising=False)
    with using_keyring(MemoryKeyring()) as backend:
        yield backend


def encrypt_in_place(path: Path, password: str = PASSWORD, *, store: bool = True) -> Path:
    """Encrypt the workbook at ``path`` (the plain file is overwritten) and store its password."""
    path.write_bytes(crypto.encrypt(path.read_bytes(), password))
    if store:
        set_secret(WORKBOOK_PASSWORD, path, password)
    return path


@pytest.fixture
def workbook(tmp_path: Path) -> Path:
    """An encrypted register: Aino (active, one access request) and Bertta (ended)."""
    path = build_register(
        tmp_path / "rekisteri.xlsx",
        clients=[client(), BERTTA],
        requests=[ACCESS_REQUEST],
        sheets=(CLIENTS, INVOICES, REQUESTS, DISCLOSURES, ERASURE_LOG),
    )
    return encrypt_in_place(path)


def invoke(*args: str, input: str | None = None) -> Result:
    """Run the CLI in-process (so that it sees the test keyring)."""
    return CliRunner().invoke(cli, [*args, "--today", TODAY.isoformat()], input=input)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def plain_of(path: Path, password: str = PASSWORD) -> bytes:
    """The plain package inside an encrypted file (which must be encrypted)."""
    data = path.read_bytes()
    assert crypto.is_encrypted(data), path
    return crypto.decrypt(data, password)


def package_text(package: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        return "\n".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())


def plain_files(root: Path) -> list[Path]:
    """Every file under ``root`` that is a plain zip package (a decrypted copy would be)."""
    return [p for p in root.rglob("*") if p.is_file() and p.read_bytes()[:2] == b"PK"]


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- reading ------------------------------------------------------------------------------------


def test_read_decrypts_in_memory_and_hashes_the_file_on_disk(workbook):
    """The register reads as usual; its snapshot is the encrypted file's hash and says so."""
    register = read_register(workbook)
    assert register.encrypted and register.snapshot.encrypted
    assert register.snapshot.sha256 == sha(workbook)
    clients = register.table("clients")
    assert clients is not None
    assert [clients.text(i, "client_id") for i in clients.nonblank_rows()] == ["A1001", "A1002"]
    package = load_package(workbook)
    assert package.encrypted and package.data == workbook.read_bytes()
    assert PASSWORD not in repr(package) and PASSWORD not in repr(register.snapshot)


def test_a_plain_register_is_not_encrypted(tmp_path):
    """A plain workbook is read and written without asking the keyring at all (here, one that
    would refuse)."""
    path = build_register(tmp_path / "r.xlsx", clients=[client()])
    with using_keyring(fail.Keyring()):
        register = read_register(path)
        assert not register.encrypted and not load_package(path).encrypted
        result = write_cells(path, {"Asiakkaat!B2": "Aili"}, expected=register.snapshot)
    assert result.written and not result.encrypted
    assert not crypto.is_encrypted(path.read_bytes())


def test_validate_cli_and_the_split_read_decrypt(workbook):
    """`validate` works on an encrypted register; the two-process split gives the same
    report (the file is decrypted once, before the fork)."""
    result = invoke("validate", str(workbook), "--format", "json")
    assert result.exit_code in (0, 1), result.output
    assert "password" not in result.stderr.lower()
    serial = validate_path(workbook, TODAY, split=False).to_dict()
    split = validate_path(workbook, TODAY, split=True).to_dict()
    assert split == serial == validate(read_register(workbook), TODAY).to_dict()
    assert json.loads(result.stdout) == json.loads(json.dumps(serial, default=str))


def test_a_valid_encrypted_register_validates_clean(tmp_path):
    """A clean encrypted register: exit 0, no findings."""
    path = encrypt_in_place(build_register(tmp_path / "r.xlsx", clients=[client()]))
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output


# --- refusals -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "words"),
    [
        (
            "none-stored",
            ["no workbook-password is stored", "sheetreg secret set workbook-password"],
        ),
        ("wrong", ["does not open it", "sheetreg secret set workbook-password"]),
        ("plaintext", ["stores passwords unencrypted", "SHEETREG_ALLOW_PLAINTEXT_KEYRING"]),
    ],
)
@pytest.mark.parametrize("command", ["validate", "flag", "extract", "requests"])
def test_no_usable_password_is_exit_2_and_nothing_written(tmp_path, case, words, command):
    """No stored password, a wrong one, or a plaintext keyring: exit 2, one clean line that
    names the file and the fix, never a password; nothing is written."""
    path = build_register(tmp_path / "r.xlsx", clients=[client(), BERTTA])
    encrypt_in_place(path, store=False)
    if case == "wrong":
        set_secret(WORKBOOK_PASSWORD, path, "väärä-salasana")
    before = files_under(tmp_path)
    args = {"extract": ["--client", "A1001"], "requests": ["--process"]}.get(command, [])
    if case == "plaintext":
        plaintext = PlaintextKeyring()
        plaintext.file_path = str(tmp_path.parent / f"{tmp_path.name}-keyring.cfg")
        with using_keyring(plaintext):
            result = invoke(command, str(path), *args)
    else:
        result = invoke(command, str(path), *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1, result.stderr
    assert str(path) in result.stderr and "password-protected" in result.stderr
    for word in words:
        assert word in result.stderr
    assert "väärä-salasana" not in result.output and PASSWORD not in result.output
    assert files_under(tmp_path) == before


def test_write_cells_refuses_without_the_password(tmp_path):
    """A write to an encrypted workbook whose password is not stored raises before writing."""
    path = encrypt_in_place(build_register(tmp_path / "r.xlsx", clients=[client()]), store=False)
    before = files_under(tmp_path)
    with pytest.raises(UnusableWorkbook, match="no workbook-password is stored"):
        write_cells(path, {"Asiakkaat!B2": "Aili"})
    assert files_under(tmp_path) == before


def test_a_damaged_encrypted_workbook_is_named_damaged(tmp_path):
    """An encrypted file whose package was changed fails its integrity check: exit 2."""
    import olefile

    path = encrypt_in_place(build_register(tmp_path / "r.xlsx", clients=[client()]))
    with olefile.OleFileIO(str(path), write_mode=True) as ole:
        package = bytearray(ole.openstream("EncryptedPackage").read())
        package[len(package) // 2] ^= 0xFF
        ole.write_stream("EncryptedPackage", bytes(package))
    result = invoke("validate", str(path))
    assert result.exit_code == 2 and "damaged" in result.stderr
    assert result.stderr.count("\n") == 1


# --- writing ------------------------------------------------------------------------------------


def test_flag_writes_back_encrypted_with_an_encrypted_backup(workbook, tmp_path):
    """`flag` decrypts, patches and writes the workbook back encrypted with the same password;
    the backup is the encrypted original; no plain file or temporary file is left anywhere."""
    original = workbook.read_bytes()
    result = invoke("flag", str(workbook), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["written"]
    book = openpyxl.load_workbook(io.BytesIO(plain_of(workbook)))
    statuses = [row[-1].value for row in book["Asiakkaat"].iter_rows(min_row=2)]
    assert statuses[0] == "Aktiivinen" and statuses[1].startswith("Päättynyt")
    [backup] = list_backups(workbook, tmp_path / "backups")
    assert backup.read_bytes() == original
    assert plain_files(tmp_path) == []
    assert not list(tmp_path.rglob("*.tmp"))
    again = invoke("flag", str(workbook))
    assert again.exit_code == 0 and "ajan tasalla" in again.output


def test_write_cells_result_hashes_the_encrypted_file(workbook):
    """WriteResult: the hashes are of the files on disk, and the write says it encrypted."""
    register = read_register(workbook)
    result = write_cells(workbook, {"Asiakkaat!B2": "Aili"}, expected=register.snapshot)
    assert result.written and result.encrypted
    assert result.sha256_before == register.snapshot.sha256
    assert result.sha256_after == sha(workbook)
    assert read_register(workbook).table("clients").text(0, "first_name") == "Aili"


def test_a_workbook_changed_since_read_is_refused(workbook):
    """The changed-since-read check compares the encrypted bytes on disk: saved again (same
    data, new encryption salt), the file no longer matches the snapshot."""
    register = read_register(workbook)
    workbook.write_bytes(crypto.encrypt(plain_of(workbook), PASSWORD))
    before = workbook.read_bytes()
    with pytest.raises(WriteRefused, match="changed after sheetreg read it"):
        write_cells(workbook, {"Asiakkaat!B2": "Aili"}, expected=register.snapshot)
    assert workbook.read_bytes() == before


@pytest.mark.libreoffice
def test_libreoffice_opens_the_written_workbook_with_its_password(workbook, tmp_path):
    """LibreOffice opens the workbook sheetreg wrote, with the password (a Basic macro passes
    it as the Password load property), and reads the flagged status back."""
    assert invoke("flag", str(workbook)).exit_code == 0
    work = tmp_path / "lo"
    work.mkdir()
    csv = libreoffice_open_with_password(workbook, PASSWORD, work)
    assert csv is not None
    text = csv.read_text(encoding="latin-1")  # LibreOffice's CSV filter default
    assert "A1001" in text and "Päättynyt 26.10.2026" in text


# --- erasure ------------------------------------------------------------------------------------


def test_erasure_on_an_encrypted_register(workbook, tmp_path):
    """An erasure decrypts in memory, proves on the plain package, writes back encrypted, and
    erases the (encrypted) backup in place, which stays encrypted."""
    assert invoke("flag", str(workbook)).exit_code == 0
    [copy] = list_backups(workbook, tmp_path / "backups")
    assert "Kallioniemi" in package_text(plain_of(copy))
    result = invoke("erase", str(workbook), "--client", "A1002", "--yes", "--format", "json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    erasure = out["erasures"][0]
    assert erasure["verification"]["ok"] and erasure["verification"]["leftovers"] == []
    assert out["backups"]["erased"] == [copy.name]
    text = package_text(plain_of(workbook))
    assert not [v for v in BERTTA_VALUES if v.casefold() in text.casefold()]
    assert "Aino" in text
    copy_text = package_text(plain_of(copy))  # still encrypted, with the same password
    assert not [v for v in BERTTA_VALUES if v.casefold() in copy_text.casefold()]
    assert "Aino" in copy_text
    assert read_journal(workbook)[0]["sha_written"] == sha(workbook)
    assert PASSWORD not in journal_path(workbook).read_text(encoding="utf-8")
    assert plain_files(tmp_path) == []
    assert not list(tmp_path.rglob("*.tmp"))


# --- extracts -----------------------------------------------------------------------------------


def test_extract_is_an_encrypted_xlsx_with_a_password_shown_once(workbook, tmp_path):
    """The extract of an encrypted register is the .xlsx only, encrypted with a new password
    printed once (text and JSON); no HTML or JSON file; nothing plain on disk."""
    result = invoke("extract", str(workbook), "--client", "A1001", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    password = data["password"]
    assert isinstance(password, str) and len(password) >= 16
    assert data["encrypted"] is True and data["html"] is None and data["json"] is None
    xlsx = Path(data["xlsx"])
    assert [p.name for p in xlsx.parent.iterdir()] == [xlsx.name]
    book = openpyxl.load_workbook(io.BytesIO(plain_of(xlsx, password)))
    assert "Aino" in package_text(plain_of(xlsx, password))
    assert len(book.sheetnames) > 1
    assert plain_files(tmp_path) == []
    text = invoke("extract", str(workbook), "--client", "A1001")
    assert text.exit_code == 0, text.output
    shown = [line.strip() for line in text.stdout.splitlines() if line.startswith("    ")]
    assert len(shown) == 1 and shown[0] != password  # a new password for the new file
    assert crypto.decrypt(xlsx.read_bytes(), shown[0])
    assert "Anna salasana asiakkaalle" in text.stdout


def test_extract_with_a_given_password(workbook):
    """--password-stdin encrypts with the given password and does not print it."""
    given = "Asiakkaan-oma-salasana-7"
    result = invoke(
        "extract", str(workbook), "--client", "A1001", "--password-stdin", input=given + "\n"
    )
    assert result.exit_code == 0, result.output
    assert given not in result.output
    xlsx = next((workbook.parent / "extracts").rglob("*.xlsx"))
    assert crypto.decrypt(xlsx.read_bytes(), given)
    short = invoke(
        "extract", str(workbook), "--client", "A1001", "--password-stdin", input="lyhyt\n"
    )
    assert short.exit_code == 2 and "lyhyt" not in short.output
    both = invoke("extract", str(workbook), "--client", "A1001", "--plain", "--password-stdin")
    assert both.exit_code == 2


def test_extract_plain_on_request_warns_and_is_replaced_by_a_protected_one(workbook):
    """--plain writes all three formats unencrypted and warns; a protected extract made later
    the same day removes the plain HTML and JSON."""
    plain = invoke("extract", str(workbook), "--client", "A1001", "--plain", "--format", "json")
    assert plain.exit_code == 0, plain.output
    data = json.loads(plain.stdout)
    assert data["encrypted"] is False and data["password"] is None
    assert "Varoitus" in plain.stderr and "--plain" in plain.stderr
    paths = [Path(data[k]) for k in ("xlsx", "html", "json")]
    assert all(p.exists() for p in paths)
    assert not crypto.is_encrypted(paths[0].read_bytes())
    protected = invoke("extract", str(workbook), "--client", "A1001", "--format", "json")
    assert protected.exit_code == 0
    assert paths[0].exists() and crypto.is_encrypted(paths[0].read_bytes())
    assert not paths[1].exists() and not paths[2].exists()


def test_make_extract_api_keeps_the_password_out_of_repr_and_json(workbook, tmp_path):
    """make_extract returns the new password in the result only; a plain register's extract
    stays as before unless a password is given."""
    register = read_register(workbook)
    files = make_extract(register, "A1001", today=TODAY, out_dir=tmp_path / "otteet")
    assert files.encrypted and files.password and files.html is None and files.json is None
    assert files.password not in repr(files) and "password" not in files.to_dict()
    assert crypto.decrypt(files.xlsx.read_bytes(), files.password)
    plain_path = build_register(tmp_path / "plain.xlsx", clients=[client()])
    plain = make_extract(read_register(plain_path), "A1001", today=TODAY, out_dir=tmp_path / "p")
    assert not plain.encrypted and plain.html and plain.json
    sealed = make_extract(
        read_register(plain_path), "A1001", today=TODAY, out_dir=tmp_path / "s", password="x" * 16
    )
    assert sealed.encrypted and crypto.decrypt(sealed.xlsx.read_bytes(), "x" * 16)


# --- requests -----------------------------------------------------------------------------------


def test_requests_process_makes_no_extract_of_an_encrypted_register(workbook, tmp_path):
    """`requests --process` writes the Due cells (encrypted) but makes no extract: it tells to
    run `sheetreg extract --client ID` instead (exit 1)."""
    listed = invoke("requests", str(workbook), "--lang", "en")
    assert "sheetreg extract --client A1001" in listed.stdout
    assert "requests --process" not in listed.stdout
    result = invoke("requests", str(workbook), "--process", "--format", "json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert data["processed"] == []
    [issue] = [i for i in data["issues"] if i["code"] == "request-extract-manual"]
    assert issue["request_id"] == "P1" and issue["client_id"] == "A1001"
    assert "sheetreg extract --client A1001" in issue["message"]
    assert not (tmp_path / "extracts").exists()
    assert crypto.is_encrypted(workbook.read_bytes())
    table = read_register(workbook).table("requests")
    assert table is not None and table.date(0, "due") == dt.date(2026, 12, 21)
    assert plain_files(tmp_path) == []


@pytest.mark.libreoffice
def test_the_weekly_job_on_an_encrypted_register(tmp_path, monkeypatch):
    """`sheetreg run` reads the password from the keyring, erases the approved client, writes
    the workbook back encrypted (LibreOffice opens it with the password), leaves no plain copy
    anywhere, and lists the access request for a manual, protected extract."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = build_register(
        tmp_path / "rekisteri.xlsx",
        clients=[client(), {**BERTTA, "approve_erasure": "Kyllä"}],
        requests=[ACCESS_REQUEST],
        sheets=(CLIENTS, INVOICES, REQUESTS, DISCLOSURES, ERASURE_LOG),
    )
    encrypt_in_place(path)
    result = invoke("run", str(path), "--format", "json")
    assert result.exit_code == 1, result.output  # the manual extract needs the therapist
    out = json.loads(result.stdout)
    assert out["written"] and out["counts"]["erasures"] == 1 and out["counts"]["extracts"] == 0
    assert [i["code"] for i in out["extract_issues"]] == ["request-extract-manual"]
    assert "sheetreg extract --client A1001" in out["requests"][0]["todo"]
    text = package_text(plain_of(path))
    assert "Aktiivinen" in text
    assert not [v for v in BERTTA_VALUES if v in text]
    assert plain_files(tmp_path) == [] and not list(tmp_path.rglob("*.tmp"))
    csv = libreoffice_open_with_password(path, PASSWORD, tmp_path / "lo")
    assert csv is not None and "Aktiivinen" in csv.read_text(encoding="utf-8", errors="replace")
    # The second run on the same day changes nothing.
    before = sha(path)
    assert invoke("run", str(path)).exit_code == 1
    assert sha(path) == before
