"""The weekly job's scheduler: on time every week, caught up after sleep or power-off.

``sheetreg schedule`` keeps running and starts the job weekly at the configured day and time,
with the ``schedule`` library. The rules:

- **Catch-up, as anacron does.** The time of the last successful run is kept in a state file.
  At start (and whenever the loop wakes up) a run is *due* when a scheduled time has passed
  since the last success; with ``catch_up = true`` a due run starts at once, so a week missed
  while the machine was off or asleep is run at the next start. With ``catch_up = false`` a
  run more than an hour late is skipped until the next scheduled time. The first start ever
  (no state yet) counts as a missed run.
- **A failing run is logged and the loop goes on.** The failure is retried every
  ``retry_minutes`` until a run succeeds or the next scheduled time comes.
- **One scheduler per workbook.** A lock file held with ``fcntl.flock`` (``msvcrt.locking`` on
  Windows) for the life of the process; the operating system drops it when the process ends,
  so a crashed scheduler leaves no stale lock. A second scheduler on the same workbook stops
  with a clear message naming the first one's process ID.

The state, lock and log live in the user's platform folders (platformdirs), not beside the
workbook, because they hold nothing personal and a workbook folder may be synced to other
machines (a lock there would lock out another machine's copy, or not at all):

- state and lock: ``user_state_dir("sheetreg")/schedules/<key>.json`` and ``<key>.lock``, where
  ``<key>`` is the first 16 hex digits of the SHA-256 of the workbook's absolute path (the
  JSON names the workbook for people);
- log: ``user_log_dir("sheetreg")/scheduler.log``: times, outcomes and error codes, never a
  cell value (exception messages of other kinds than sheetreg's own are reduced to their type).

``sheetreg schedule --once`` runs the job only if it is due and exits; the operating system's
autostart entries (:func:`autostart_entry`) call it from a systemd timer, a launchd agent or
the Windows Task Scheduler, so the schedule survives a reboot without a process left running.

Time is a parameter: :class:`WeeklyScheduler` takes ``now()`` and ``sleep()``, and tests drive
it with a fake clock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import logging.handlers
import os
import plistlib
import subprocess
import sys
import tempfile
import time
import tomllib
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from sheetreg.errors import SheetregError
from sheetreg.notify import DEFAULT_PORT, NotifyConfig, send_summary
from sheetreg.run import default_log_dir, weekly_job, workbook_key

Job = Callable[["ScheduleConfig", dt.date], Mapping[str, int] | None]
"""The weekly job: given the configuration and today's date, returns counts (or None)."""

Clock = Callable[[], dt.datetime]
Sleep = Callable[[float], None]

DEFAULT_CONFIG: Final = Path("workflows") / "weekly-hygiene.toml"
WORKBOOK_ENV: Final = "SHEETREG_WORKBOOK"
WORKBOOK_TXT: Final = "workbook.txt"  # the one-click launchers' file, beside the config
MAX_NAP_SECONDS: Final = 60.0  # re-read the wall clock at least this often (sleep, DST)
LATE_GRACE: Final = dt.timedelta(hours=1)  # with catch_up off, a run this late still runs
LOGGER_NAME: Final = "sheetreg.scheduler"
UNIT_NAME: Final = "sheetreg-weekly"
LAUNCHD_LABEL: Final = "fi.sheetreg.weekly"
WINDOWS_TASK: Final = r"sheetreg\weekly"

# Weekdays in English (as `schedule` names them) and Finnish, with short forms.
WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_ALIASES: Final = {
    **{day: day for day in WEEKDAYS},
    **{day[:3]: day for day in WEEKDAYS},
    "maanantai": "monday",
    "tiistai": "tuesday",
    "keskiviikko": "wednesday",
    "torstai": "thursday",
    "perjantai": "friday",
    "lauantai": "saturday",
    "sunnuntai": "sunday",
    "ma": "monday",
    "ti": "tuesday",
    "ke": "wednesday",
    "to": "thursday",
    "pe": "friday",
    "la": "saturday",
    "su": "sunday",
}

log = logging.getLogger(LOGGER_NAME)


class SchedulerBusy(SheetregError):
    """Another scheduler already runs for this workbook (exit 2)."""


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleConfig:
    """The weekly job's settings, from ``workflows/weekly-hygiene.toml``."""

    workbook: Path
    day: str = "monday"  # an English weekday name, lower case
    time: str = "07:00"  # HH:MM, 24-hour, local time
    catch_up: bool = True
    retry_minutes: int = 60  # 0: no retry until the next scheduled time
    lang: str | None = None  # None: the workbook's language
    report_dir: Path | None = None  # None: reports/ beside the workbook
    backup_count: int | None = None  # None: the workbook's own setting (Settings sheet)
    allow_plaintext_keyring: bool | None = None  # None: SHEETREG_ALLOW_PLAINTEXT_KEYRING decides
    notify: NotifyConfig | None = None
    source: Path | None = None  # the file it was read from

    @property
    def weekday(self) -> int:
        """The scheduled weekday, Monday 0 ... Sunday 6."""
        return WEEKDAYS.index(self.day)

    @property
    def at(self) -> dt.time:
        """The scheduled time of day."""
        return dt.time.fromisoformat(self.time)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (no secrets exist in it to leave out)."""
        return {
            "workbook": str(self.workbook),
            "day": self.day,
            "time": self.time,
            "catch_up": self.catch_up,
            "retry_minutes": self.retry_minutes,
            "lang": self.lang,
            "report_dir": str(self.report_dir) if self.report_dir else None,
            "backup_count": self.backup_count,
            "notify": bool(self.notify and self.notify.enabled),
            "config": str(self.source) if self.source else None,
        }


_TOP_KEYS: Final = {"workbook", "lang", "schedule", "output", "keyring", "notify"}
_TABLE_KEYS: Final = {
    "schedule": {"day", "time", "catch_up", "retry_minutes"},
    "output": {"report_dir", "backup_count"},
    "keyring": {"allow_plaintext"},
}


def load_config(
    path: Path | str = DEFAULT_CONFIG, *, workbook: Path | str | None = None
) -> ScheduleConfig:
    """Read and check the weekly job's TOML file.

    The workbook is, first found: ``workbook`` given here (``--workbook``), the file's
    ``workbook`` key, the ``SHEETREG_WORKBOOK`` environment variable, the first line of
    ``workbook.txt`` beside the file (the one-click launchers' setting). Relative paths in the
    file are relative to the file's folder.
    """
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SheetregError(
            f"{path}: configuration file not found; give one with --config. / "
            "Asetustiedostoa ei löydy."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SheetregError(f"{path}: cannot be read ({type(exc).__name__}).") from None
    except tomllib.TOMLDecodeError as exc:
        raise SheetregError(f"{path}: not valid TOML ({exc}).") from None
    return config_from_mapping(data, path, workbook=workbook)


def config_from_mapping(
    data: Mapping[str, Any], source: Path, *, workbook: Path | str | None = None
) -> ScheduleConfig:
    """A :class:`ScheduleConfig` from parsed TOML; ``source`` names the file in messages."""
    base = source.resolve().parent
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise SheetregError(f"{source}: unknown key(s) {', '.join(unknown)}.")
    tables: dict[str, Mapping[str, Any]] = {}
    for name in ("schedule", "output", "keyring", "notify"):
        table = data.get(name, {})
        if not isinstance(table, Mapping):
            raise SheetregError(f"{source}: [{name}] must be a table.")
        if name in _TABLE_KEYS:
            extra = sorted(set(table) - _TABLE_KEYS[name])
            if extra:
                raise SheetregError(f"{source}: unknown key(s) in [{name}]: {', '.join(extra)}.")
        tables[name] = table
    sched, output, keyring = tables["schedule"], tables["output"], tables["keyring"]

    book = _workbook(workbook, _get(data, "workbook", str, "", source), base, source)
    day_text = _get(sched, "day", str, "monday", source).strip().lower()
    day = _DAY_ALIASES.get(day_text)
    if day is None:
        raise SheetregError(
            f"{source}: [schedule] day {day_text!r} is not a weekday (e.g. monday / maanantai)."
        )
    time_text = _get(sched, "time", str, "07:00", source).strip()
    try:
        at = dt.time.fromisoformat(time_text)
    except ValueError:
        at = None
    if at is None or len(time_text) != 5:
        raise SheetregError(f"{source}: [schedule] time must be HH:MM, e.g. 07:30.")
    retry = _get(sched, "retry_minutes", int, 60, source)
    if retry < 0:
        raise SheetregError(f"{source}: [schedule] retry_minutes must be 0 or more.")
    lang = _get(data, "lang", str, "", source).strip() or None
    if lang not in {None, "fi", "en"}:
        raise SheetregError(f"{source}: lang must be fi, en or empty.")
    report = _get(output, "report_dir", str, "", source).strip()
    backups: int | None = None
    if "backup_count" in output:
        backups = _get(output, "backup_count", int, 10, source)
        if backups < 0:
            raise SheetregError(
                f"{source}: [output] backup_count must be 0 or more; leave it out to use the "
                "workbook's own setting."
            )
        backups = max(backups, 1)  # a write always keeps the newest backup
    allow = _get(keyring, "allow_plaintext", bool, False, source) or None
    notify = _notify_config(tables["notify"], book, base, allow, source)
    return ScheduleConfig(
        workbook=book,
        day=day,
        time=time_text,
        catch_up=_get(sched, "catch_up", bool, True, source),
        retry_minutes=retry,
        lang=lang,
        report_dir=_resolve(report, base) if report else None,
        backup_count=backups,
        allow_plaintext_keyring=allow,
        notify=notify,
        source=source.resolve(),
    )


def _notify_config(
    table: Mapping[str, Any], book: Path, base: Path, allow: bool | None, source: Path
) -> NotifyConfig:
    known = {"enabled", "smtp_host", "smtp_port", "username", "sender", "recipients"}
    unknown = sorted(set(table) - known - {"cafile", "timeout_seconds"})
    if unknown:
        raise SheetregError(f"{source}: unknown key(s) in [notify]: {', '.join(unknown)}.")
    recipients = _get(table, "recipients", list, [], source)
    cafile = _get(table, "cafile", str, "", source).strip()
    timeout = _get(table, "timeout_seconds", (int, float), 30, source)
    config = NotifyConfig(
        workbook=book,
        enabled=_get(table, "enabled", bool, False, source),
        host=_get(table, "smtp_host", str, "", source).strip(),
        port=_get(table, "smtp_port", int, DEFAULT_PORT, source),
        username=_get(table, "username", str, "", source).strip(),
        sender=_get(table, "sender", str, "", source).strip(),
        recipients=tuple(str(r).strip() for r in recipients if str(r).strip()),
        cafile=_resolve(cafile, base) if cafile else None,
        timeout_seconds=float(timeout),
        allow_plaintext_keyring=allow,
    )
    if config.enabled:
        config.check(f"{source}: [notify]")
    return config


def _workbook(given: Path | str | None, key: str, base: Path, source: Path) -> Path:
    if given:
        return Path(given).expanduser().resolve()
    if key.strip():
        return _resolve(key.strip(), base)
    if os.environ.get(WORKBOOK_ENV, "").strip():
        return Path(os.environ[WORKBOOK_ENV].strip()).expanduser().resolve()
    launcher_file = base / WORKBOOK_TXT
    if launcher_file.is_file():
        for line in launcher_file.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                return _resolve(line.strip(), base)
    raise SheetregError(
        f"{source}: no workbook configured: set workbook in the file, give --workbook, or set "
        f"{WORKBOOK_ENV}. / Työkirjaa ei ole määritetty."
    )


def _resolve(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return (path if path.is_absolute() else base / path).resolve()


def _get(
    table: Mapping[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    default: Any,
    source: Path,
) -> Any:
    value = table.get(key, default)
    # A TOML boolean is no number here, though bool subclasses int.
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        names = "/".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise SheetregError(f"{source}: {key} must be a {names}.")
    return value


# --- state, lock, log ------------------------------------------------------------------------


def default_state_dir() -> Path:
    """The folder of the schedulers' state and lock files."""
    import platformdirs

    return platformdirs.user_state_path("sheetreg") / "schedules"


@dataclass
class ScheduleState:
    """What the scheduler remembers between starts, per workbook."""

    last_success: dt.datetime | None = None
    last_attempt: dt.datetime | None = None
    last_failure: dt.datetime | None = None
    last_error: str | None = None  # an error class name, never a message
    failures_in_a_row: int = 0

    @classmethod
    def load(cls, path: Path) -> ScheduleState:
        """The state in ``path``; an empty state if there is none or it is unreadable."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                last_success=_parse_time(data.get("last_success")),
                last_attempt=_parse_time(data.get("last_attempt")),
                last_failure=_parse_time(data.get("last_failure")),
                last_error=data.get("last_error") or None,
                failures_in_a_row=int(data.get("failures_in_a_row") or 0),
            )
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError, AttributeError):
            log.warning("state file %s is unreadable; starting afresh", path)
            return cls()

    def save(self, path: Path, workbook: Path) -> None:
        """Write the state atomically."""
        data = {
            "workbook": str(workbook),
            "last_success": _time_text(self.last_success),
            "last_attempt": _time_text(self.last_attempt),
            "last_failure": _time_text(self.last_failure),
            "last_error": self.last_error,
            "failures_in_a_row": self.failures_in_a_row,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2)
                fh.write("\n")
            Path(name).replace(path)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise


def _parse_time(text: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text) if text else None


def _time_text(moment: dt.datetime | None) -> str | None:
    return moment.isoformat(timespec="seconds") if moment else None


class InstanceLock:
    """An exclusive, non-blocking lock on a file for the life of this process.

    The lock is the operating system's (``flock`` / ``msvcrt.locking``), so it disappears with
    the process; the file only tells the next comer which process holds it.
    """

    # On Windows the locked byte range cannot be read by others: lock a byte past the PID.
    _WINDOWS_LOCK_OFFSET = 4096

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`SchedulerBusy`."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+", encoding="utf-8")
        try:
            _lock(fh, self._WINDOWS_LOCK_OFFSET)
        except OSError:
            fh.seek(0)
            holder = fh.read(32).strip() or "?"
            fh.close()
            raise SchedulerBusy(
                f"another sheetreg scheduler (process {holder}) is already running for "
                f"{self.what}; this one does not start. / Ajastin on jo käynnissä."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        """Let go of the lock (the file stays; it is harmless)."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                _unlock(self._fh, self._WINDOWS_LOCK_OFFSET)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> InstanceLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


if os.name == "nt":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fh: IO[str], offset: int) -> None:
        fh.seek(offset)
        msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(fh: IO[str], offset: int) -> None:
        fh.seek(offset)
        msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fh: IO[str], offset: int) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fh: IO[str], offset: int) -> None:
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def _log_to(folder: Path) -> Iterator[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "scheduler.log"
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    previous = log.level
    log.setLevel(logging.INFO)
    try:
        yield path
    finally:
        log.removeHandler(handler)
        log.setLevel(previous)
        handler.close()


@contextlib.contextmanager
def _schedule_clock(clock: Clock) -> Iterator[None]:
    """Make the ``schedule`` library read ``clock`` instead of the system time.

    ``schedule`` calls ``datetime.datetime.now()`` through its module's ``datetime`` name and
    offers no other seam; only an injected clock (tests) swaps that name, for the duration.
    """
    import schedule

    if clock == dt.datetime.now:  # bound methods of a C type are equal, never identical
        yield
        return

    class ClockDatetime(dt.datetime):
        @classmethod
        def now(cls, tz: dt.tzinfo | None = None) -> ClockDatetime:  # type: ignore[override]
            moment = clock()
            if tz is not None:
                moment = moment.astimezone(tz)
            return cls.combine(moment.date(), moment.timetz())

    shim = types.SimpleNamespace(**{k: v for k, v in vars(dt).items() if not k.startswith("__")})
    shim.datetime = ClockDatetime
    original = schedule.datetime
    schedule.datetime = shim  # type: ignore[assignment]
    try:
        yield
    finally:
        schedule.datetime = original


# --- the scheduler ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOutcome:
    """What one attempt (or a check that found nothing due) came to."""

    status: str  # "ok", "failed" or "not-due"
    started: dt.datetime
    counts: Mapping[str, int] | None = None
    error: str | None = None  # the error class name
    exit_code: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {
            "status": self.status,
            "started": _time_text(self.started),
            "counts": dict(self.counts) if self.counts is not None else None,
            "error": self.error,
            "exit_code": self.exit_code,
        }


@dataclass
class WeeklyScheduler:
    """Runs ``job`` weekly as configured, catching up missed runs; see the module's notes."""

    config: ScheduleConfig
    job: Job = weekly_job
    now: Clock = dt.datetime.now
    sleep: Sleep = time.sleep
    state_dir: Path = field(default_factory=default_state_dir)
    log_dir: Path = field(default_factory=default_log_dir)
    notifier: Callable[..., None] = send_summary
    max_nap: float = MAX_NAP_SECONDS

    def __post_init__(self) -> None:
        import schedule

        key = workbook_key(self.config.workbook)
        self.state_path = self.state_dir / f"{key}.json"
        self.lock = InstanceLock(self.state_dir / f"{key}.lock", str(self.config.workbook))
        self.schedule = schedule.Scheduler()
        self._retry_job: Any = None

    # -- when ----------------------------------------------------------------------------------

    def last_slot(self, moment: dt.datetime) -> dt.datetime:
        """The latest scheduled time at or before ``moment``."""
        at = self.config.at
        days_back = (moment.weekday() - self.config.weekday) % 7
        slot = dt.datetime.combine(moment.date() - dt.timedelta(days=days_back), at)
        if slot > moment:
            slot -= dt.timedelta(days=7)
        return slot

    def next_slot(self, moment: dt.datetime) -> dt.datetime:
        """The first scheduled time after ``moment``."""
        return self.last_slot(moment) + dt.timedelta(days=7)

    def is_due(self, moment: dt.datetime, state: ScheduleState | None = None) -> bool:
        """Whether a scheduled run has passed since the last success (see ``catch_up``)."""
        state = state or ScheduleState.load(self.state_path)
        slot = self.last_slot(moment)
        if state.last_success is not None and state.last_success >= slot:
            return False
        if self.config.catch_up:
            return True
        retrying = state.last_failure is not None and state.last_failure >= slot
        return retrying or moment - slot <= LATE_GRACE

    # -- one attempt ---------------------------------------------------------------------------

    def attempt(self, reason: str) -> RunOutcome:
        """Run the job now: log, remember the outcome, e-mail the counts if configured."""
        started = self.now()
        state = ScheduleState.load(self.state_path)
        state.last_attempt = started
        log.info("run started (%s; scheduled %s)", reason, self.last_slot(started))
        try:
            counts = self.job(self.config, started.date())
        except Exception as exc:  # the loop must go on whatever the job raised
            state.last_failure = started
            state.last_error = type(exc).__name__
            state.failures_in_a_row += 1
            state.save(self.state_path, self.config.workbook)
            # sheetreg's own messages are safe to log (errors.py); others may quote data.
            detail = str(exc) if isinstance(exc, SheetregError) else "details withheld"
            log.error("run failed: %s: %s", type(exc).__name__, detail)
            self._notify({}, started, failed=True)
            code = exc.exit_code if isinstance(exc, SheetregError) else 1
            return RunOutcome("failed", started, error=type(exc).__name__, exit_code=code or 1)
        state.last_success = started
        state.last_error = None
        state.failures_in_a_row = 0
        state.save(self.state_path, self.config.workbook)
        shown = ", ".join(f"{k}={v}" for k, v in (counts or {}).items() if isinstance(v, int))
        log.info("run finished%s", f": {shown}" if shown else "")
        self._notify(counts, started, failed=False)
        return RunOutcome("ok", started, counts=counts)

    def _notify(
        self, counts: Mapping[str, int] | None, started: dt.datetime, *, failed: bool
    ) -> None:
        config = self.config.notify
        if config is None or not config.enabled or (counts is None and not failed):
            return
        try:
            self.notifier(
                config, counts or {}, self.config.lang or "fi", today=started.date(), failed=failed
            )
        except Exception as exc:  # a lost e-mail must not turn a good run into a failure
            detail = str(exc) if isinstance(exc, SheetregError) else "details withheld"
            log.error("summary e-mail not sent: %s: %s", type(exc).__name__, detail)
        else:
            log.info("summary e-mail sent")

    # -- the two ways to run -------------------------------------------------------------------

    def run_once(self) -> RunOutcome:
        """Run the job if it is due (the autostart entries' ``--once``); else do nothing."""
        with self.lock, _log_to(self.log_dir):
            moment = self.now()
            if not self.is_due(moment):
                return RunOutcome("not-due", moment)
            late = moment - self.last_slot(moment) > LATE_GRACE
            return self.attempt("catch-up" if late else "scheduled")

    def run_forever(self, until: Callable[[], bool] | None = None) -> None:
        """Run weekly until ``until()`` is true (never, by default) or the process is stopped."""
        with self.lock, _log_to(self.log_dir), _schedule_clock(self.now):
            start = self.now()
            log.info(
                "scheduler started for %s: %s at %s, catch-up %s",
                self.config.workbook,
                self.config.day,
                self.config.time,
                "on" if self.config.catch_up else "off",
            )
            if self.config.catch_up and self.is_due(start):
                self._after(self.attempt("catch-up"))
            weekly = getattr(self.schedule.every(), self.config.day)
            weekly.at(self.config.time).do(self._on_slot)
            try:
                while until is None or not until():
                    self.schedule.run_pending()
                    idle = self.schedule.idle_seconds
                    nap = self.max_nap if idle is None else min(self.max_nap, max(idle, 1.0))
                    self.sleep(nap)
            finally:
                self.schedule.clear()
                self._retry_job = None
                log.info("scheduler stopped")

    def _on_slot(self) -> None:
        if self.is_due(self.now()):
            self._after(self.attempt("scheduled"))
        elif not self.config.catch_up:
            log.info("run skipped: more than an hour late and catch-up is off")

    def _on_retry(self, slot: dt.datetime) -> Any:
        import schedule

        # A retry belongs to one week's run: once the next scheduled time has come, that
        # week's own job takes over (both may fall due in the same tick).
        if self.last_slot(self.now()) != slot or not self.is_due(self.now()):
            return schedule.CancelJob
        outcome = self.attempt("retry")
        return schedule.CancelJob if outcome.status == "ok" else None

    def _after(self, outcome: RunOutcome) -> None:
        if self._retry_job is not None:
            self.schedule.cancel_job(self._retry_job)
            self._retry_job = None
        if outcome.status == "failed" and self.config.retry_minutes:
            log.info("next try in %d minutes", self.config.retry_minutes)
            slot = self.last_slot(outcome.started)
            every = self.schedule.every(self.config.retry_minutes).minutes
            self._retry_job = every.do(self._on_retry, slot)


# --- autostart entries -----------------------------------------------------------------------


@dataclass(frozen=True)
class ActivationStep:
    """A command that activates an installed entry; ``may_fail`` for clean-up steps."""

    argv: tuple[str, ...]
    may_fail: bool = False

    def text(self) -> str:
        """The command as one would type it (POSIX shell or cmd.exe quoting)."""
        if self.argv and self.argv[0] == "schtasks":
            return subprocess.list2cmdline(self.argv)
        import shlex

        return shlex.join(self.argv)


@dataclass(frozen=True)
class AutostartEntry:
    """What makes the operating system run ``sheetreg schedule --once`` on schedule."""

    system: str  # "linux", "macos" or "windows"
    files: dict[Path, str]  # file -> content to write
    steps: tuple[ActivationStep, ...]
    folders: tuple[Path, ...] = ()  # to create before activating (launchd's log folder)

    def text(self) -> str:
        """Every file with its path, then the commands to run: what ``--print`` shows."""
        parts = [f"# {path}\n{content.rstrip()}\n" for path, content in self.files.items()]
        if self.steps:
            parts.append("# then run / aja sitten:\n" + "\n".join(s.text() for s in self.steps))
        return "\n".join(parts).rstrip() + "\n"


def current_system() -> str:
    """``linux``, ``macos`` or ``windows`` for this machine (other POSIX systems: linux)."""
    if sys.platform == "darwin":
        return "macos"
    if os.name == "nt":
        return "windows"
    return "linux"


def once_command(config: ScheduleConfig, program: Sequence[str] | None = None) -> list[str]:
    """The command an autostart entry runs: ``python -m sheetreg schedule --once ...``."""
    if config.source is None:
        raise SheetregError("the autostart entry needs a configuration file (--config).")
    argv = list(program) if program else [sys.executable, "-m", "sheetreg"]
    argv += ["schedule", "--once", "--config", str(config.source)]
    argv += ["--workbook", str(config.workbook)]
    return argv


def autostart_entry(
    config: ScheduleConfig,
    *,
    system: str | None = None,
    program: Sequence[str] | None = None,
    home: Path | None = None,
) -> AutostartEntry:
    """The autostart entry for ``system`` (default: this one) running the weekly job.

    - linux: a systemd user service (``Type=oneshot``, retried on failure) and timer
      (``OnCalendar`` at the day and time, ``Persistent=`` the catch-up setting);
    - macos: a launchd agent (``StartCalendarInterval``; ``RunAtLoad`` for catch-up;
      ``StartInterval`` for retries, harmless since ``--once`` does nothing when not due);
    - windows: ``schtasks`` commands: a weekly task (repeated for retries) and, for catch-up, a
      task at log-on.
    """
    system = system or current_system()
    argv = once_command(config, program)
    if system == "linux":
        return _systemd_entry(config, argv, home)
    if system == "macos":
        return _launchd_entry(config, argv, home)
    if system == "windows":
        return _schtasks_entry(config, argv)
    raise SheetregError(f"unknown system {system!r}; use linux, macos or windows.")


def _systemd_entry(config: ScheduleConfig, argv: list[str], home: Path | None) -> AutostartEntry:
    import shlex

    if home is None and os.environ.get("XDG_CONFIG_HOME"):
        config_home = Path(os.environ["XDG_CONFIG_HOME"])
    else:
        config_home = (home or Path.home()) / ".config"
    unit_dir = config_home / "systemd" / "user"
    day = config.day[:3].capitalize()
    # systemd's ExecStart takes shell-like quoting and expands % specifiers and $VARIABLES.
    exec_start = shlex.join(argv).replace("%", "%%").replace("$", "$$")
    retry = (
        f"Restart=on-failure\nRestartSec={config.retry_minutes}min\n"
        # exit 2 is a configuration or usage problem, or another scheduler: retrying won't help
        "RestartPreventExitStatus=2\n"
        if config.retry_minutes
        else ""
    )
    service = (
        "[Unit]\n"
        "Description=sheetreg weekly job (register hygiene) / sheetregin viikkoajo\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"ExecStart={exec_start}\n"
        f"{retry}"
    )
    timer = (
        "[Unit]\n"
        "Description=sheetreg weekly job timer / sheetregin viikkoajastin\n"
        "\n"
        "[Timer]\n"
        f"OnCalendar={day} *-*-* {config.time}:00\n"
        f"Persistent={'true' if config.catch_up else 'false'}\n"
        f"Unit={UNIT_NAME}.service\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    steps = (
        ActivationStep(("systemctl", "--user", "daemon-reload")),
        ActivationStep(("systemctl", "--user", "enable", "--now", f"{UNIT_NAME}.timer")),
    )
    files = {unit_dir / f"{UNIT_NAME}.service": service, unit_dir / f"{UNIT_NAME}.timer": timer}
    return AutostartEntry("linux", files, steps)


def _launchd_entry(config: ScheduleConfig, argv: list[str], home: Path | None) -> AutostartEntry:
    agents = (home or Path.home()) / "Library" / "LaunchAgents"
    plist_path = agents / f"{LAUNCHD_LABEL}.plist"
    log_dir = (home or Path.home()) / "Library" / "Logs" / "sheetreg"  # platformdirs' on macOS
    at = config.at
    plist: dict[str, Any] = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": argv,
        # launchd counts weekdays from Sunday = 0.
        "StartCalendarInterval": {
            "Weekday": (config.weekday + 1) % 7,
            "Hour": at.hour,
            "Minute": at.minute,
        },
        "RunAtLoad": config.catch_up,
        "ProcessType": "Background",
        "StandardOutPath": str(log_dir / "launchd.out.log"),
        "StandardErrorPath": str(log_dir / "launchd.err.log"),
    }
    if config.retry_minutes:
        plist["StartInterval"] = config.retry_minutes * 60
    content = plistlib.dumps(plist, sort_keys=False).decode("utf-8")
    steps = (
        ActivationStep(("launchctl", "unload", str(plist_path)), may_fail=True),
        ActivationStep(("launchctl", "load", "-w", str(plist_path))),
    )
    return AutostartEntry("macos", {plist_path: content}, steps, folders=(log_dir,))


def _schtasks_entry(config: ScheduleConfig, argv: list[str]) -> AutostartEntry:
    command = subprocess.list2cmdline(argv)
    weekly = [
        "schtasks", "/Create", "/F", "/TN", WINDOWS_TASK, "/SC", "WEEKLY",
        "/D", config.day[:3].upper(), "/ST", config.time, "/TR", command,
    ]  # fmt: skip
    if config.retry_minutes:
        # Repeat for a day after the weekly time; --once does nothing once a run succeeded.
        weekly += ["/RI", str(config.retry_minutes), "/DU", "24:00"]
    steps = [ActivationStep(tuple(weekly))]
    if config.catch_up:
        at_logon = ["schtasks", "/Create", "/F", "/TN", f"{WINDOWS_TASK}-catch-up"]
        at_logon += ["/SC", "ONLOGON", "/TR", command]
        steps.append(ActivationStep(tuple(at_logon)))
    return AutostartEntry("windows", {}, tuple(steps))


def install_autostart(
    entry: AutostartEntry, *, run: Callable[..., Any] = subprocess.run
) -> list[str]:
    """Write the entry's files and run its activation steps; returns what was done.

    A step that fails (no systemd user session, say) raises :class:`SheetregError` listing the
    commands to run by hand; the files stay written.
    """
    done: list[str] = []
    for folder in entry.folders:
        folder.mkdir(parents=True, exist_ok=True)
    for path, content in entry.files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        done.append(f"wrote {path}")
    for step in entry.steps:
        try:
            result = run(list(step.argv), capture_output=True, text=True, check=False)
            code = result.returncode
        except OSError:
            code = -1
        if code != 0 and not step.may_fail:
            remaining = "\n  ".join(s.text() for s in entry.steps if not s.may_fail)
            raise SheetregError(
                f"could not activate the autostart entry ({step.argv[0]} exited {code}). Run "
                f"these yourself / aja nämä itse:\n  {remaining}"
            )
        if code == 0:
            done.append(f"ran {step.text()}")
    return done
