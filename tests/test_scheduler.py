"""The weekly scheduler, driven by a fake clock: timing, catch-up, failures, one instance."""

from __future__ import annotations

import datetime as dt
import json
import os
import plistlib
import shlex
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from memory_keyring import MemoryKeyring, using_keyring
from sheetreg.errors import SheetregError, WriteRefused
from sheetreg.notify import NotifyConfig
from sheetreg.run import weekly_job
from sheetreg.scheduler import (
    InstanceLock,
    ScheduleConfig,
    SchedulerBusy,
    ScheduleState,
    WeeklyScheduler,
    autostart_entry,
    config_from_mapping,
    install_autostart,
    load_config,
    workbook_key,
)

from conftest import build_register, client

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = ROOT / "workflows" / "weekly-hygiene.toml"
MONDAY_0730 = dt.datetime(2026, 11, 23, 7, 30)  # a Monday
WEDNESDAY = dt.datetime(2026, 11, 25, 12, 0)


@pytest.fixture(autouse=True)
def memory_keyring() -> Iterator[MemoryKeyring]:
    """No test here may reach the user's keyring."""
    with using_keyring(MemoryKeyring()) as backend:
        yield backend


@pytest.fixture
def cli() -> Iterator[click.Group]:
    """The sheetreg CLI (it registers `secret` and `schedule` itself)."""
    from sheetreg.cli import cli as group

    yield group


class FakeClock:
    """A wall clock that moves only when the scheduler sleeps (or a test moves it)."""

    def __init__(self, start: dt.datetime) -> None:
        self.moment = start
        self.slept = 0.0

    def now(self) -> dt.datetime:
        return self.moment

    def sleep(self, seconds: float) -> None:
        self.moment += dt.timedelta(seconds=seconds)
        self.slept += seconds

    def until(self, end: dt.datetime) -> Callable[[], bool]:
        return lambda: self.moment >= end


class RecordingJob:
    """A job that remembers when it ran, and fails while ``failures`` lasts."""

    def __init__(self, clock: FakeClock, failures: list[BaseException] | None = None) -> None:
        self.clock = clock
        self.failures = list(failures or [])
        self.calls: list[dt.datetime] = []

    def __call__(self, config: ScheduleConfig, today: dt.date) -> Mapping[str, int]:
        self.calls.append(self.clock.now())
        assert today == self.clock.now().date()
        if self.failures:
            raise self.failures.pop(0)
        return {"errors": 0, "warnings": 2}


@pytest.fixture
def config(tmp_path: Path) -> ScheduleConfig:
    """Monday 07:30, catch-up on, hourly retries, for a workbook in tmp_path."""
    return ScheduleConfig(workbook=tmp_path / "rekisteri.xlsx", day="monday", time="07:30")


def make(
    config: ScheduleConfig, clock: FakeClock, job: Any, tmp_path: Path, **kwargs: Any
) -> WeeklyScheduler:
    """A scheduler on the fake clock with its state and log in tmp_path."""
    return WeeklyScheduler(
        config,
        job=job,
        now=clock.now,
        sleep=clock.sleep,
        state_dir=tmp_path / "state",
        log_dir=tmp_path / "log",
        **kwargs,
    )


def remember_success(scheduler: WeeklyScheduler, when: dt.datetime) -> None:
    """Write a state file saying the last successful run was at ``when``."""
    ScheduleState(last_success=when).save(scheduler.state_path, scheduler.config.workbook)


def log_text(tmp_path: Path) -> str:
    """The scheduler's log."""
    return (tmp_path / "log" / "scheduler.log").read_text(encoding="utf-8")


# --- when -------------------------------------------------------------------------------------


def test_last_and_next_slot(config, tmp_path):
    """The last slot is the latest Monday 07:30 at or before the moment."""
    s = make(config, FakeClock(WEDNESDAY), RecordingJob(FakeClock(WEDNESDAY)), tmp_path)
    assert s.last_slot(WEDNESDAY) == MONDAY_0730
    assert s.last_slot(MONDAY_0730) == MONDAY_0730
    assert s.last_slot(MONDAY_0730 - dt.timedelta(minutes=1)) == MONDAY_0730 - dt.timedelta(7)
    assert s.next_slot(WEDNESDAY) == MONDAY_0730 + dt.timedelta(7)


def test_runs_weekly_at_the_configured_time(config, tmp_path):
    """With last week's run done, the job runs at Monday 07:30 and again a week later."""
    clock = FakeClock(dt.datetime(2026, 11, 20, 9, 0))  # Friday
    job = RecordingJob(clock)
    s = make(config, clock, job, tmp_path)
    remember_success(s, MONDAY_0730 - dt.timedelta(days=7, seconds=-5))
    s.run_forever(until=clock.until(MONDAY_0730 + dt.timedelta(days=7, hours=1)))
    assert job.calls == [MONDAY_0730, MONDAY_0730 + dt.timedelta(days=7)]
    assert clock.slept > 0


def test_catch_up_at_start_after_machine_was_off(config, tmp_path):
    """A Monday missed while the machine was off runs at the next start, then weekly again."""
    clock = FakeClock(WEDNESDAY)
    job = RecordingJob(clock)
    s = make(config, clock, job, tmp_path, max_nap=3600)
    remember_success(s, MONDAY_0730 - dt.timedelta(days=7))
    s.run_forever(until=clock.until(MONDAY_0730 + dt.timedelta(days=7, minutes=1)))
    assert job.calls == [WEDNESDAY, MONDAY_0730 + dt.timedelta(days=7)]
    assert "catch-up" in log_text(tmp_path)


def test_first_start_ever_counts_as_missed(config, tmp_path):
    """Without any state (a fresh install) the job runs at once, as anacron would."""
    clock = FakeClock(WEDNESDAY)
    job = RecordingJob(clock)
    make(config, clock, job, tmp_path).run_forever(until=clock.until(WEDNESDAY))
    assert job.calls == [WEDNESDAY]


def test_no_catch_up_when_already_done(config, tmp_path):
    """A restart after this week's successful run does not run it again."""
    clock = FakeClock(WEDNESDAY)
    job = RecordingJob(clock)
    s = make(config, clock, job, tmp_path, max_nap=3600)
    remember_success(s, MONDAY_0730 + dt.timedelta(seconds=3))
    s.run_forever(until=clock.until(WEDNESDAY + dt.timedelta(days=1)))
    assert job.calls == []


def test_catch_up_off_waits_for_next_week(config, tmp_path):
    """With catch_up = false a missed run is not started late; the next Monday's is."""
    clock = FakeClock(WEDNESDAY)
    job = RecordingJob(clock)
    s = make(replace(config, catch_up=False), clock, job, tmp_path, max_nap=3600)
    remember_success(s, MONDAY_0730 - dt.timedelta(days=7))
    s.run_forever(until=clock.until(MONDAY_0730 + dt.timedelta(days=7, minutes=1)))
    assert job.calls == [MONDAY_0730 + dt.timedelta(days=7)]


def test_wakes_from_sleep_across_the_slot(config, tmp_path):
    """A laptop asleep over Monday 07:30 runs the job once when it wakes up."""
    clock = FakeClock(dt.datetime(2026, 11, 22, 22, 0))  # Sunday night
    job = RecordingJob(clock)
    s = make(config, clock, job, tmp_path)
    remember_success(s, MONDAY_0730 - dt.timedelta(days=7))
    woke = dt.datetime(2026, 11, 24, 8, 0)

    def suspend_once(seconds: float) -> None:
        # The first nap lasts until Tuesday morning, as a suspended machine's does.
        if clock.moment < woke - dt.timedelta(days=1):
            clock.moment = woke
        else:
            clock.sleep(seconds)

    s.sleep = suspend_once
    s.run_forever(until=clock.until(dt.datetime(2026, 11, 24, 9, 0)))
    assert job.calls == [woke]


# --- failure --------------------------------------------------------------------------------


def test_failed_run_is_logged_and_retried(config, tmp_path):
    """A failing run is logged, the loop goes on, and an hourly retry succeeds."""
    clock = FakeClock(MONDAY_0730 - dt.timedelta(minutes=1))
    refused = WriteRefused("rekisteri.xlsx is open in Excel (~$rekisteri.xlsx); not written.")
    job = RecordingJob(clock, failures=[refused, refused])
    s = make(config, clock, job, tmp_path)
    remember_success(s, MONDAY_0730 - dt.timedelta(days=7))
    s.run_forever(until=clock.until(MONDAY_0730 + dt.timedelta(hours=5)))
    assert job.calls == [MONDAY_0730 + dt.timedelta(hours=h) for h in (0, 1, 2)]
    state = ScheduleState.load(s.state_path)
    assert state.last_success == MONDAY_0730 + dt.timedelta(hours=2)
    assert state.failures_in_a_row == 0
    text = log_text(tmp_path)
    assert text.count("run failed: WriteRefused") == 2
    assert "run finished: errors=0, warnings=2" in text


def test_unexpected_error_logged_without_its_message(config, tmp_path):
    """An error that is not sheetreg's own is logged by type only: it might quote a cell."""
    clock = FakeClock(WEDNESDAY)
    job = RecordingJob(clock, failures=[ValueError("Aino Virtanen 040 123 4567")])
    s = make(config, clock, job, tmp_path)
    s.run_forever(until=clock.until(WEDNESDAY + dt.timedelta(minutes=1)))
    text = log_text(tmp_path)
    assert "run failed: ValueError: details withheld" in text
    assert "Aino" not in text
    assert "4567" not in text
    assert ScheduleState.load(s.state_path).last_error == "ValueError"


def test_failures_keep_retrying_until_next_week_then_the_week_runs(config, tmp_path):
    """A job that always fails is retried, and never stops the weekly loop."""
    clock = FakeClock(MONDAY_0730 - dt.timedelta(minutes=1))
    config = ScheduleConfig(workbook=config.workbook, retry_minutes=24 * 60, time="07:30")
    job = RecordingJob(clock, failures=[SheetregError("unusable")] * 20)
    s = make(config, clock, job, tmp_path, max_nap=3600)
    remember_success(s, MONDAY_0730 - dt.timedelta(days=7))
    s.run_forever(until=clock.until(MONDAY_0730 + dt.timedelta(days=7, minutes=1)))
    # Monday, six daily retries, and next Monday's own run.
    assert len(job.calls) == 8
    assert job.calls[-1] == MONDAY_0730 + dt.timedelta(days=7)


# --- one scheduler per workbook ---------------------------------------------------------------


def test_second_scheduler_refuses_to_start(config, tmp_path):
    """While one scheduler holds the workbook, a second one stops with a clear message."""
    clock = FakeClock(WEDNESDAY)
    first = make(config, clock, RecordingJob(clock), tmp_path)
    second = make(config, clock, RecordingJob(clock), tmp_path)
    with first.lock:
        with pytest.raises(SchedulerBusy, match=f"process {os.getpid()}"):
            second.run_forever(until=lambda: True)
        with pytest.raises(SchedulerBusy):
            second.run_once()
    second.run_once()  # free again


def test_lock_of_a_dead_process_is_not_stale(config, tmp_path):
    """A lock held by another process refuses us; once that process dies, we start."""
    lock_path = tmp_path / "state" / f"{workbook_key(config.workbook)}.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys
                from pathlib import Path
                from sheetreg.scheduler import InstanceLock
                lock = InstanceLock(Path({str(lock_path)!r}), "test")
                lock.acquire()
                print("held", flush=True)
                sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(SchedulerBusy, match=f"process {holder.pid}"):
            InstanceLock(lock_path, "test").acquire()
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert lock_path.read_text().strip() == str(holder.pid)  # the dead holder's PID remains
    lock = InstanceLock(lock_path, "test")
    lock.acquire()
    assert lock_path.read_text().strip() == str(os.getpid())
    lock.release()


# --- --once -----------------------------------------------------------------------------------


def test_run_once_runs_only_when_due(config, tmp_path):
    """--once runs a due job, then finds nothing due until the next Monday."""
    clock = FakeClock(WEDNESDAY)
    job = RecordingJob(clock)
    s = make(config, clock, job, tmp_path)
    remember_success(s, MONDAY_0730 - dt.timedelta(days=7))
    assert s.run_once().status == "ok"
    assert s.run_once().status == "not-due"
    clock.moment = MONDAY_0730 + dt.timedelta(days=7)
    assert s.run_once().status == "ok"
    assert len(job.calls) == 2


def test_run_once_failure_has_the_error_exit_code(config, tmp_path):
    """A failed --once run reports the error's exit code (1 for a refused write)."""
    clock = FakeClock(WEDNESDAY)
    s = make(config, clock, RecordingJob(clock, failures=[WriteRefused("open")]), tmp_path)
    outcome = s.run_once()
    assert (outcome.status, outcome.error, outcome.exit_code) == ("failed", "WriteRefused", 1)


def test_run_once_catch_up_off_retries_a_failed_run_only(config, tmp_path):
    """With catch-up off, --once a day late does nothing, unless it retries today's failure."""
    clock = FakeClock(MONDAY_0730 + dt.timedelta(days=1))
    off = ScheduleConfig(workbook=config.workbook, time="07:30", catch_up=False)
    job = RecordingJob(clock)
    s = make(off, clock, job, tmp_path)
    remember_success(s, MONDAY_0730 - dt.timedelta(days=7))
    assert s.run_once().status == "not-due"
    ScheduleState(last_success=MONDAY_0730 - dt.timedelta(days=7), last_failure=MONDAY_0730).save(
        s.state_path, off.workbook
    )
    assert s.run_once().status == "ok"


# --- notification -----------------------------------------------------------------------------


def test_summary_sent_after_success_and_failure(config, tmp_path):
    """An enabled notification gets the counts after a success and a notice after a failure."""
    notify = NotifyConfig(
        workbook=config.workbook,
        enabled=True,
        host="smtp.example.fi",
        sender="t@example.fi",
        recipients=("t@example.fi",),
    )
    config = ScheduleConfig(workbook=config.workbook, time="07:30", notify=notify, lang="en")
    sent: list[tuple[Any, ...]] = []

    def notifier(cfg: NotifyConfig, counts: Mapping[str, int], lang: str, **kw: Any) -> None:
        sent.append((dict(counts), lang, kw["failed"]))
        if len(sent) == 2:
            raise SheetregError("mail server down")

    clock = FakeClock(WEDNESDAY)
    job = RecordingJob(clock, failures=[WriteRefused("open")])
    s = make(config, clock, job, tmp_path, notifier=notifier)
    assert s.run_once().status == "failed"
    assert s.run_once().status == "ok"  # the e-mail failing does not fail the run
    assert sent == [({}, "en", True), ({"errors": 0, "warnings": 2}, "en", False)]
    assert "summary e-mail not sent: SheetregError: mail server down" in log_text(tmp_path)


# --- configuration ----------------------------------------------------------------------------


def test_shipped_config_loads_and_documents_every_key(tmp_path):
    """workflows/weekly-hygiene.toml loads, and every key in it has a comment right above."""
    config = load_config(SHIPPED_CONFIG, workbook=tmp_path / "r.xlsx")
    assert (config.day, config.time, config.catch_up) == ("monday", "07:30", True)
    assert config.notify is not None and not config.notify.enabled
    assert config.backup_count is None  # the workbook's own setting decides
    lines = SHIPPED_CONFIG.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if line and not line.startswith(("#", "[")):
            assert lines[number - 1].startswith("#"), f"undocumented: {line}"
    data = tomllib.loads(SHIPPED_CONFIG.read_text(encoding="utf-8"))
    assert "password" not in json.dumps(data).lower().replace("allow_plaintext", "")


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_config_values_and_relative_paths(tmp_path):
    """Finnish day names work; relative paths are relative to the config file's folder."""
    path = _config(
        tmp_path,
        """
        workbook = "data/rekisteri.xlsx"
        lang = "en"
        [schedule]
        day = "Perjantai"
        time = "16:05"
        catch_up = false
        retry_minutes = 0
        [output]
        report_dir = "raportit"
        backup_count = 3
        """,
    )
    config = load_config(path)
    assert config.workbook == (tmp_path / "data" / "rekisteri.xlsx").resolve()
    assert (config.day, config.time, config.catch_up, config.retry_minutes) == (
        "friday",
        "16:05",
        False,
        0,
    )
    assert config.report_dir == (tmp_path / "raportit").resolve()
    assert (config.lang, config.backup_count) == ("en", 3)
    none_kept = config_from_mapping({"workbook": "r.xlsx", "output": {"backup_count": 0}}, path)
    assert none_kept.backup_count == 1  # the newest is always kept


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('workbook = "r.xlsx"\ntypo = 1', "unknown key"),
        ('workbook = "r.xlsx"\n[schedule]\nday = "someday"', "not a weekday"),
        ('workbook = "r.xlsx"\n[schedule]\ntime = "7:30"', "HH:MM"),
        ('workbook = "r.xlsx"\n[schedule]\ntime = "25:00"', "HH:MM"),
        ('workbook = "r.xlsx"\n[schedule]\ncatch_up = "yes"', "catch_up"),
        ('workbook = "r.xlsx"\n[schedule]\nretry_minutes = -1', "retry_minutes"),
        ('workbook = "r.xlsx"\n[output]\nbackup_count = -1', "0 or more"),
        ('workbook = "r.xlsx"\n[output]\nbackup_count = "3"', "backup_count"),
        ('workbook = "r.xlsx"\n[notify]\nenabled = true', "smtp_host"),
        ('workbook = "r.xlsx"\n[notify]\npassword = "x"', "unknown key"),
        ("workbook = [", "not valid TOML"),
    ],
)
def test_config_errors(tmp_path, text, message):
    """Every bad setting is a clear error naming the file."""
    with pytest.raises(SheetregError, match=message) as caught:
        load_config(_config(tmp_path, text))
    assert "job.toml" in str(caught.value)


def test_notify_table(tmp_path):
    """The [notify] table is type-checked, its cafile resolved, and when enabled complete."""
    table = {
        "enabled": True,
        "smtp_host": "smtp.example.fi",
        "smtp_port": 587,
        "username": "t",
        "sender": "t@example.fi",
        "recipients": ["t@example.fi"],
        "cafile": "ca.pem",
        "timeout_seconds": 30,
    }
    (tmp_path / "ca.pem").write_text("-")
    source = tmp_path / "job.toml"

    def notify(**changes: Any) -> NotifyConfig | None:
        data = {"workbook": "r.xlsx", "notify": {**table, **changes}}
        return config_from_mapping(data, source).notify

    config = notify()
    assert config is not None and config.enabled and config.port == 587
    assert config.cafile == (tmp_path / "ca.pem").resolve()
    assert config.workbook == (tmp_path / "r.xlsx").resolve()
    for changes, message in [
        ({"smtp_port": "587"}, "smtp_port"),
        ({"recipients": []}, "recipients"),
        ({"sender": "ei osoite"}, "sender"),
        ({"password": "x"}, "unknown key"),
        ({"cafile": "missing.pem"}, "cafile"),
    ]:
        with pytest.raises(SheetregError, match=message):
            notify(**changes)
    disabled = notify(enabled=False, smtp_host="", recipients=[])
    assert disabled is not None and not disabled.enabled


def test_workbook_resolution_order(tmp_path, monkeypatch):
    """--workbook, then the file's key, then SHEETREG_WORKBOOK, then workbook.txt beside it."""
    monkeypatch.delenv("SHEETREG_WORKBOOK", raising=False)
    source = tmp_path / "job.toml"
    with pytest.raises(SheetregError, match="no workbook configured"):
        config_from_mapping({}, source)
    (tmp_path / "workbook.txt").write_text("# the register\n\nlauncher.xlsx\n")
    assert config_from_mapping({}, source).workbook.name == "launcher.xlsx"
    monkeypatch.setenv("SHEETREG_WORKBOOK", str(tmp_path / "env.xlsx"))
    assert config_from_mapping({}, source).workbook.name == "env.xlsx"
    assert config_from_mapping({"workbook": "key.xlsx"}, source).workbook.name == "key.xlsx"
    given = config_from_mapping({"workbook": "key.xlsx"}, source, workbook="cli.xlsx")
    assert given.workbook.name == "cli.xlsx"


def test_missing_config_file(tmp_path):
    """A missing configuration file says so and how to give one."""
    with pytest.raises(SheetregError, match="--config"):
        load_config(tmp_path / "none.toml")


# --- autostart entries ------------------------------------------------------------------------


@pytest.fixture
def spaced_config(tmp_path: Path) -> ScheduleConfig:
    """A configuration whose paths contain spaces and a percent sign, as real ones may."""
    folder = tmp_path / "Omat tiedostot 100%"
    folder.mkdir()
    path = folder / "weekly hygiene.toml"
    path.write_text('workbook = "Asiakas rekisteri.xlsx"\n[schedule]\nday = "ti"\n')
    return load_config(path)


def test_systemd_units(spaced_config, tmp_path):
    """Linux: a oneshot service running --once, and a persistent timer at the weekly time."""
    program = ["/opt/sheet reg/bin/python", "-m", "sheetreg"]
    entry = autostart_entry(spaced_config, system="linux", program=program, home=tmp_path)
    service = entry.files[tmp_path / ".config/systemd/user/sheetreg-weekly.service"]
    timer = entry.files[tmp_path / ".config/systemd/user/sheetreg-weekly.timer"]
    assert "Type=oneshot" in service
    assert "Restart=on-failure" in service and "RestartSec=60min" in service
    exec_line = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    argv = shlex.split(exec_line.removeprefix("ExecStart=").replace("%%", "%"))
    assert argv[:6] == [*program, "schedule", "--once", "--config"]
    assert argv[6] == str(spaced_config.source)
    assert argv[7:] == ["--workbook", str(spaced_config.workbook)]
    assert "OnCalendar=Tue *-*-* 07:00:00" in timer
    assert "Persistent=true" in timer
    assert "WantedBy=timers.target" in timer
    assert [s.argv[-1] for s in entry.steps] == ["daemon-reload", "sheetreg-weekly.timer"]


def test_systemd_timer_without_catch_up(config, tmp_path):
    """catch_up = false makes the timer not persistent and drops the retry when it is 0."""
    source = tmp_path / "c.toml"
    off = ScheduleConfig(workbook=config.workbook, catch_up=False, retry_minutes=0, source=source)
    entry = autostart_entry(off, system="linux", home=tmp_path)
    text = entry.text()
    assert "Persistent=false" in text
    assert "Restart=" not in text


def test_launchd_plist(spaced_config, tmp_path):
    """macOS: a launch agent with the weekly calendar time, run at load, hourly retries."""
    entry = autostart_entry(spaced_config, system="macos", program=["sheetreg"], home=tmp_path)
    [(path, content)] = entry.files.items()
    assert path == tmp_path / "Library/LaunchAgents/fi.sheetreg.weekly.plist"
    plist = plistlib.loads(content.encode())
    assert plist["Label"] == "fi.sheetreg.weekly"
    assert plist["ProgramArguments"] == [
        "sheetreg", "schedule", "--once", "--config", str(spaced_config.source),
        "--workbook", str(spaced_config.workbook),
    ]  # fmt: skip
    assert plist["StartCalendarInterval"] == {"Weekday": 2, "Hour": 7, "Minute": 0}
    assert plist["RunAtLoad"] is True
    assert plist["StartInterval"] == 3600
    assert entry.steps[-1].argv == ("launchctl", "load", "-w", str(path))


def test_launchd_sunday_is_zero(config, tmp_path):
    """launchd numbers Sunday 0, so a Sunday job gets Weekday 0."""
    sunday = ScheduleConfig(workbook=config.workbook, day="sunday", source=tmp_path / "c.toml")
    entry = autostart_entry(sunday, system="macos", home=tmp_path)
    plist = plistlib.loads(next(iter(entry.files.values())).encode())
    assert plist["StartCalendarInterval"]["Weekday"] == 0


def test_windows_schtasks(spaced_config):
    """Windows: a weekly task repeated for retries, and a log-on task for catch-up."""
    program = [r"C:\Program Files\Python311\python.exe", "-m", "sheetreg"]
    entry = autostart_entry(spaced_config, system="windows", program=program)
    assert entry.files == {}
    weekly, logon = (step.text() for step in entry.steps)
    assert weekly.startswith(r"schtasks /Create /F /TN sheetreg\weekly /SC WEEKLY /D TUE")
    assert "/ST 07:00" in weekly and "/RI 60 /DU 24:00" in weekly
    assert r"\"C:\Program Files\Python311\python.exe\" -m sheetreg schedule --once" in weekly
    assert r"sheetreg\weekly-catch-up /SC ONLOGON" in logon
    tr = entry.steps[0].argv[entry.steps[0].argv.index("/TR") + 1]
    assert f'--config "{spaced_config.source}"' in tr


def test_install_writes_files_and_activates(spaced_config, tmp_path):
    """install_autostart writes the unit files and runs the activation commands."""
    calls: list[list[str]] = []

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    entry = autostart_entry(spaced_config, system="linux", home=tmp_path)
    done = install_autostart(entry, run=run)
    for path, content in entry.files.items():
        assert path.read_text() == content
    assert calls == [list(s.argv) for s in entry.steps]
    assert len(done) == 4


def test_install_failure_lists_the_commands(spaced_config, tmp_path):
    """If activation fails (no systemd session), the error gives the commands to run by hand."""

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, 1, "", "Failed to connect to bus")

    entry = autostart_entry(spaced_config, system="linux", home=tmp_path)
    with pytest.raises(SheetregError, match=r"systemctl --user enable --now sheetreg-weekly\."):
        install_autostart(entry, run=run)
    assert all(path.exists() for path in entry.files)


def test_launchd_install_tolerates_unload_failure(spaced_config, tmp_path):
    """The first macOS install's `launchctl unload` fails harmlessly; the load must not."""
    codes = iter([1, 0])

    def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(argv, next(codes), "", "")

    entry = autostart_entry(spaced_config, system="macos", home=tmp_path)
    install_autostart(entry, run=run)
    assert (tmp_path / "Library" / "Logs" / "sheetreg").is_dir()


# --- the command line and the real job --------------------------------------------------------


@pytest.fixture
def real_setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A real register and a config for it; platform folders redirected into tmp_path."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    monkeypatch.delenv("SHEETREG_WORKBOOK", raising=False)
    workbook = build_register(tmp_path / "rekisteri.xlsx", clients=[client()])
    path = _config(tmp_path, 'workbook = "rekisteri.xlsx"\n')
    return workbook, path


def test_weekly_job_on_a_real_register(real_setup):
    """The scheduler's job is the weekly run: it writes the report and returns counts only."""
    workbook, path = real_setup
    counts = weekly_job(load_config(path), dt.date(2026, 11, 25))
    assert counts["clients"] == 1 and counts["errors"] == 0
    assert all(isinstance(v, int) for v in counts.values())
    assert (workbook.parent / "reports" / "hygiene-2026-11-25.html").is_file()


@pytest.mark.parametrize(("setting", "kept"), [(None, 6), (2, 2)])
def test_weekly_job_keeps_the_configured_number_of_backups(real_setup, setting, kept):
    """[output] backup_count, when set, decides how many backups the scheduled run keeps;
    left out, the workbook's own setting (10 when empty) does."""
    workbook, path = real_setup
    folder = workbook.parent / "backups"
    folder.mkdir()
    for day in range(1, 6):  # five older backups, as earlier weeks left them
        (folder / f"{workbook.stem}.202611{day:02}-073000-000000.xlsx").write_bytes(b"old")
    config = replace(load_config(path), backup_count=setting)
    weekly_job(config, dt.date(2026, 11, 25))  # writes the status: a sixth backup
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == kept
    assert names[-1] > f"{workbook.stem}.20261105"  # the newest kept: this run's own


def test_cli_once_runs_the_weekly_job_then_nothing_due(real_setup, tmp_path, cli):
    """`schedule --once` runs the weekly job on the real workbook; a second call finds
    nothing due."""
    _, path = real_setup
    runner = CliRunner()
    first = runner.invoke(cli, ["schedule", "--once", "--config", str(path), "--format", "json"])
    assert first.exit_code == 0, first.output
    outcome = json.loads(first.output)
    assert outcome["status"] == "ok" and outcome["counts"]["clients"] == 1
    second = runner.invoke(cli, ["schedule", "--once", "--config", str(path)])
    assert second.exit_code == 0
    assert "nothing due" in second.output
    log = (tmp_path / "xdg-state" / "sheetreg" / "log" / "scheduler.log").read_text()
    assert "Aino" not in log and "Virtanen" not in log


def test_cli_once_on_a_missing_workbook_fails_with_exit_2(tmp_path, monkeypatch, cli):
    """A run on a workbook that does not exist fails, logged, with exit code 2."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    path = _config(tmp_path, 'workbook = "puuttuu.xlsx"\n')
    result = CliRunner().invoke(cli, ["schedule", "--once", "--config", str(path)])
    assert result.exit_code == 2
    assert "UnusableWorkbook" in result.output


def test_cli_print_for_each_system(real_setup, cli):
    """`schedule --print --os X` prints the entry for any system and changes nothing."""
    _, path = real_setup
    runner = CliRunner()
    expected = {"linux": "OnCalendar=Mon", "macos": "StartCalendarInterval", "windows": "schtasks"}
    for system, marker in expected.items():
        result = runner.invoke(cli, ["schedule", "--print", "--os", system, "--config", str(path)])
        assert result.exit_code == 0, result.output
        assert marker in result.output
        assert "--once" in result.output


def test_cli_install_for_another_system_refused(real_setup, cli):
    """--install only installs for this machine; another system's entry can only be printed."""
    _, path = real_setup
    other = "windows" if sys.platform != "win32" else "linux"
    result = CliRunner().invoke(
        cli, ["schedule", "--install", "--os", other, "--config", str(path)]
    )
    assert result.exit_code == 2
    assert "--print" in result.output
