"""Validation split over two processes gives exactly the serial report."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import openpyxl
import pytest

from sheetreg.demo import make_demo_workbook
from sheetreg.errors import UnusableWorkbook
from sheetreg.pipeline import validate_path

from conftest import TODAY, client, zombies


@pytest.mark.parametrize("lang", ["fi", "en"])
def test_split_equals_serial_on_the_demo(tmp_path, lang):
    """Every planted finding, in the same order, whether one process reads or two do."""
    path = tmp_path / "demo.xlsx"
    make_demo_workbook(path, clients=200, lang=lang, today=TODAY)
    serial = validate_path(path, TODAY, split=False)
    split = validate_path(path, TODAY, split=True)
    assert split.to_dict() == serial.to_dict()
    assert len(serial.findings) > 20


def test_split_equals_serial_with_formulas_merges_and_hetu_in_settings(register_path):
    """Structure findings and a HETU on a non-register sheet are reported once, as serially."""
    path = register_path(
        clients=[client(), client(client_id="A2", email="x@", phone="1")],
        invoices=[{"invoice_number": "1", "client_id": "Z9", "invoice_date": dt.date(2026, 1, 1)}],
    )
    wb = openpyxl.load_workbook(path)
    wb["Asiakkaat"]["G2"] = "=1+1"
    wb["Laskut"].merge_cells("D5:E5")
    wb.create_sheet("Muistiinpanot")["B3"] = "tunnus 131052-308T"
    wb.save(path)
    serial = validate_path(path, TODAY, split=False)
    split = validate_path(path, TODAY, split=True)
    assert split.to_dict() == serial.to_dict()
    codes = [f.code for f in serial.findings]
    assert codes.count("hetu-found") == 1
    assert {"formula-in-data", "merged-cells", "unknown-client"} <= set(codes)


def test_split_reports_unusable_input(tmp_path):
    """An unusable file is refused the same way on the split path."""
    path = tmp_path / "x.xlsx"
    path.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(UnusableWorkbook):
        validate_path(path, TODAY, split=True)


def test_split_without_clients_sheet(register_path):
    """A workbook lacking Clients: missing-sheet once, no unknown-client noise."""
    from sheetreg.schema import INVOICES

    path = register_path(sheets=(INVOICES,), invoices=[{"invoice_number": "1"}])
    serial = validate_path(path, TODAY, split=False)
    assert validate_path(path, TODAY, split=True).to_dict() == serial.to_dict()
    assert [f.code for f in serial.findings].count("missing-sheet") == 3


def _boom(x):
    raise RuntimeError(x)


def test_forked_work_returns_results_and_failures():
    """A forked job hands back its result, or FAILED when it raised; the parent carries on."""
    from sheetreg import forking

    assert forking.start(sum, [1, 2, 3])() == 6
    assert forking.start(_boom, "x")() is forking.FAILED


def test_background_work_runs_at_a_lower_priority():
    """A background child yields its core (a higher niceness) and never goes to a spare,
    which runs at this process's priority; this process's own priority is left as it was."""
    import os

    from sheetreg import forking

    mine = os.nice(0)
    want = min(mine + forking.BACKGROUND_NICENESS, 19)
    assert forking.start(os.nice, 0, background=True)() == want
    assert forking.start(os.nice, 0)() == mine
    with forking.spares(1):
        assert forking.start(os.nice, 0, light=True, background=True)() == want
        assert len(forking._SPARES) == 1  # not taken
    assert forking.start(os.nice, 0, fork=False, background=True)() == mine  # not forked
    assert os.nice(0) == mine


def test_a_collector_gives_its_result_again_and_can_be_discarded(tmp_path):
    """Collected twice: the same result, the child reaped once. Discarded: a forked child
    is reaped; work that was never forked is not done at all."""
    from sheetreg import forking

    collect = forking.start(sum, [1, 2, 3])
    assert collect() == 6 and collect() == 6
    forked = forking.start(sum, [4])
    forked.discard()
    assert forked() == 4  # reaped by discard(); its result still there
    assert not zombies()
    marker = tmp_path / "ran"
    lazy = forking.start(marker.write_text, "x", fork=False)
    lazy.discard()
    assert not marker.exists() and lazy() is forking.FAILED

    def interrupted():
        raise KeyboardInterrupt

    broken = forking.Collector(interrupted, lazy=False)
    with pytest.raises(KeyboardInterrupt):
        broken()
    assert broken() is forking.FAILED  # not tried again on a closed pipe


def _fed_boom(receive, message):
    raise RuntimeError(message)


def _fed_sum(receive, head):
    before = head * 2  # done before the input is asked for
    return before + sum(receive())


def _fed_after(receive, marker):
    # Asks for its input only once the parent got past send(): a send that waited for the
    # child to read (a pipe holds 64 KiB) would never get there.
    for _ in range(1000):
        if marker.exists():
            return sum(receive())
        time.sleep(0.01)
    raise TimeoutError("send() held the parent up")


@pytest.mark.parametrize("can_fork", [True, False])
def test_fed_work_gets_its_input_later(monkeypatch, tmp_path, can_fork):
    """start_fed: the child starts before its input exists and is handed it with send();
    a big input (beyond a pipe's buffer) does not hold the parent up, and a child forked
    meanwhile does not disturb it; collected or discarded without input, the work fails
    instead of waiting forever, and nothing is left behind."""
    from sheetreg import forking

    monkeypatch.setattr(forking, "CAN_FORK", can_fork)
    marker = tmp_path / "sent"
    fed = forking.start_fed(_fed_after, marker)
    other = forking.start(sum, [5])  # forked while the fed child still waits
    fed.send(list(range(200_000)))  # megabytes pickled
    marker.touch()
    assert fed() == sum(range(200_000)) and fed() == fed()
    assert other() == 5
    hungry = forking.start_fed(_fed_sum, 1)
    assert hungry() is forking.FAILED  # nothing was sent
    dropped = forking.start_fed(_fed_sum, 1)
    dropped.discard()
    dropped.send([1])  # too late: ignored
    assert dropped() is forking.FAILED
    failing = forking.start_fed(_fed_boom, "x")
    failing.send([1])  # the child raised first: the write finds nobody, nothing hangs
    assert failing() is forking.FAILED
    if can_fork:  # an input that does not pickle: the error shows, the child is not left waiting
        unsendable = forking.start_fed(_fed_sum, 1)
        with pytest.raises(Exception, match="pickle"):
            unsendable.send([lambda: 1])
        assert unsendable() is forking.FAILED
    assert not zombies()
    assert not forking._PARENT_ONLY


_SEEN: dict[str, int] = {}


def _seen(key):
    return _SEEN.get(key)


def test_spares_take_light_work_as_they_were_forked():
    """Inside spares(), light work goes to a child forked on the way in: it does not see
    what this process did since (a fresh fork would), its input comes pickled, fed work
    too; unpicklable arguments are forked as before; what is not used is released."""
    from sheetreg import forking

    with forking.spares(4):
        assert len(forking._SPARES) == 4
        _SEEN["later"] = 1
        assert forking.start(_seen, "later", light=True)() is None  # a spare's
        assert forking.start(_seen, "later")() == 1  # a fresh fork's
        fed = forking.start_fed(_fed_sum, 1, light=True)
        fed.send(list(range(200_000)))  # megabytes, after the job on the same pipe
        assert fed() == 2 + sum(range(200_000))
        assert forking.start(_call, lambda: 5, light=True)() == 5  # forked: no pickling
        assert len(forking._SPARES) == 1  # the lambda's spare was released, not lost
        hungry = forking.start_fed(_fed_sum, 1, light=True)
        with pytest.raises(Exception, match="pickle"):
            hungry.send([lambda: 1])  # does not pickle: the spare is told nothing comes
        assert hungry() is forking.FAILED
        assert forking.start(sum, [1], light=True)() == 1  # none left: forked as it is
    _SEEN.clear()
    with forking.spares(1):
        # A child forked meanwhile has no spares: the parent's are not its to use.
        assert forking.start(_light_in_child)() == 6
    assert not forking._SPARES and not forking._PARENT_ONLY
    assert not zombies()


def _call(fn):
    return fn()


def _light_in_child():
    from sheetreg import forking

    return forking.start(sum, [1, 2, 3], light=True)()


def test_spares_are_released_and_a_dead_one_fails_cleanly():
    """A spare left over exits when released, even while another child that was forked
    after it still runs; a job handed to a spare that died comes back FAILED, at once."""
    import os
    import signal

    from sheetreg import forking

    with forking.spares(2):
        sleeper = forking.start(time.sleep, 3)  # holds no end of the spares' pipes
        dead = forking._SPARES[-1]
        os.kill(dead.pid, signal.SIGKILL)
        started = time.monotonic()
        assert forking.start(sum, [1], light=True)() is forking.FAILED
        pids = [s.pid for s in forking._SPARES]
    assert time.monotonic() - started < 2  # released without waiting for the sleeper
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped already
    assert sleeper() is None
    assert not zombies() and not forking._PARENT_ONLY


class _Big:
    """A first result that can be watched with a weak reference."""

    def __init__(self, n):
        self.items = list(range(n))

    def __iter__(self):
        return iter(self.items)


def _staged_first(n, marker):
    return list(range(n))


def _staged_big(n, marker):
    return _Big(n)


def _staged_then(first, n, marker):
    # Waits until the parent has the first result: it must come before this one is made.
    for _ in range(1000):
        if Path(marker).exists():
            return sum(first) + n
        time.sleep(0.01)
    raise TimeoutError("the first result was not sent on its own")


def _staged_dies(first, n, marker):
    import os

    os._exit(3)


def test_a_staged_job_sends_its_first_result_before_the_second(tmp_path):
    """A spare hands back the first step's result at once and then makes the second from
    it; a second step that fails, or a spare that died, comes back FAILED, with the spare
    reaped either way; without a spare nothing is started."""
    import gc
    import os
    import signal
    import weakref

    from sheetreg import forking

    marker = tmp_path / "got-it"
    assert forking.on_spare_staged(_staged_first, _staged_then, 3, str(marker)) is None
    with forking.spares(4):
        first, then = forking.on_spare_staged(_staged_first, _staged_then, 200_000, str(marker))
        assert first() == list(range(200_000))  # megabytes, while the spare waits
        marker.write_text("x")
        assert then() == sum(range(200_000)) + 200_000 and first() == list(range(200_000))
        # The second collector does not keep the first's result alive (a package of tens
        # of megabytes while the file is written).
        first, then = forking.on_spare_staged(_staged_big, _staged_then, 3, str(marker))
        got = weakref.ref(first())
        del first
        gc.collect()
        assert got() is None and then() == 3 + 3  # sum(range(3)) + 3
        first, then = forking.on_spare_staged(_staged_first, _staged_dies, 2, str(marker))
        assert first() == [0, 1] and then() is forking.FAILED
        os.kill(forking._SPARES[-1].pid, signal.SIGKILL)
        first, then = forking.on_spare_staged(_staged_first, _staged_then, 2, str(marker))
        assert then() is forking.FAILED and first() is forking.FAILED  # in either order
        assert not forking._SPARES
    assert not zombies() and not forking._PARENT_ONLY


def _fed_first(receive, box, ready):
    Path(ready).write_text("started")  # before its input exists
    box.append(receive())
    return list(range(box[0]))


def _fed_then(first, box, ready):
    return sum(first) + box[0]  # the input, kept by the first step for the second


def test_a_staged_job_can_get_its_input_later(tmp_path):
    """A staged spare job can start before its last input exists: sent later, it goes to
    the first step, whose result comes back first; collected or discarded without a send,
    the job fails and the spare is reaped; without a spare nothing is started."""
    from sheetreg import forking

    ready = tmp_path / "ready"
    assert forking.on_spare_staged_fed(_fed_first, _fed_then, [], str(ready)) is None
    with forking.spares(3):
        send, first, then = forking.on_spare_staged_fed(_fed_first, _fed_then, [], str(ready))
        for _ in range(1000):
            if ready.exists():
                break
            time.sleep(0.01)
        assert ready.read_text() == "started"
        send(100_000)
        send(7)  # once only
        assert first() == list(range(100_000))
        assert then() == sum(range(100_000)) + 100_000
        send, first, then = forking.on_spare_staged_fed(_fed_first, _fed_then, [], str(ready))
        assert first() is forking.FAILED and then() is forking.FAILED
        send, first, then = forking.on_spare_staged_fed(_fed_first, _fed_then, [], str(ready))
        then.discard()
        first.discard()
        assert len(forking._SPARES) == 0
    assert not zombies() and not forking._PARENT_ONLY


def test_spares_that_cannot_be_forked_are_done_without(monkeypatch):
    """A fork refused (a process limit) leaves fewer spares, not a failed command."""
    import os

    from sheetreg import forking

    real_fork, forks = os.fork, []

    def refusing() -> int:
        forks.append(1)
        if len(forks) > 1:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return real_fork()

    monkeypatch.setattr(os, "fork", refusing)
    fd_folder = Path("/proc/self/fd")
    open_fds = sum(1 for _ in fd_folder.iterdir())
    with forking.spares(3):
        monkeypatch.undo()
        assert len(forking._SPARES) == 1
        assert forking.start(sum, [1, 2], light=True)() == 3
        assert forking.start(sum, [3], light=True)() == 3  # forked as it is
    assert not forking._SPARES and not forking._PARENT_ONLY and not zombies()
    assert sum(1 for _ in fd_folder.iterdir()) == open_fds  # the refused fork's pipes closed


def test_spares_without_fork_do_the_work_here(monkeypatch):
    """Where nothing forks, spares() forks nothing and light work runs in this process."""
    from sheetreg import forking

    monkeypatch.setattr(forking, "CAN_FORK", False)
    with forking.spares(2):
        assert not forking._SPARES
        _SEEN["here"] = 2
        assert forking.start(_seen, "here", light=True)() == 2
    _SEEN.clear()


def test_split_sees_a_hetu_on_a_second_clients_tab(register_path):
    """A second tab named like Clients is scanned for HETUs on the split path too."""
    path = register_path(clients=[client()])
    wb = openpyxl.load_workbook(path)
    wb.create_sheet("Clients")["A2"] = "131052-308T"
    wb.save(path)
    serial = validate_path(path, TODAY, split=False)
    split = validate_path(path, TODAY, split=True)
    assert split.to_dict() == serial.to_dict()
    assert ("hetu-found", "Clients", "A2") in {(f.code, f.sheet, f.cell) for f in split.findings}


def test_big_bytes_cross_a_pipe_as_they_are():
    """A package handed to a child is not copied into the pickle stream: it goes as an
    out-of-band buffer written from the object itself, also inside a PatchResult; whatever
    crosses comes back equal, as bytes, and a patch still pickles the ordinary way."""
    import os
    import pickle
    import threading

    from sheetreg import forking
    from sheetreg.xlsxpatch import PatchResult

    package = os.urandom(3 << 20)
    message = forking._dumps((sum, (package, [1, 2]), False))
    stream, buffer = message  # the package is out of the stream
    assert len(stream) < 1024 and memoryview(buffer).obj is package
    patch = PatchResult(package, ["xl/worksheets/sheet1.xml"], 2, [])
    assert memoryview(forking._dumps(patch)[1]).obj is package
    assert pickle.loads(pickle.dumps(patch)) == patch  # protocol 4: in the stream
    small = forking._dumps(("a", b"b" * 10))
    assert len(small) == 1  # small bytes stay in the stream
    received = []
    for obj in [(sum, (package, [1, 2]), False), patch, ("a", b"b")]:
        read_end, write_end = os.pipe()
        writer = threading.Thread(target=forking._write_all, args=(write_end, forking._dumps(obj)))
        writer.start()
        with os.fdopen(read_end, "rb") as fh:
            received.append(forking._read_message(fh))
        writer.join()
        assert received[-1] == obj
    assert type(received[0][1][0]) is bytes and type(received[1].data) is bytes
    read_end, write_end = os.pipe()
    forking._write_all(write_end, None)  # nothing
    with os.fdopen(read_end, "rb") as fh, pytest.raises(EOFError):
        forking._read_message(fh)
    with forking.spares(1):  # through a spare and back
        echoed = forking.start(_echo, patch, light=True)()
    assert echoed == patch and type(echoed.data) is bytes


def _echo(obj):
    return obj


def test_an_edit_batch_is_pickled_once_by_columns():
    """The edits handed to several children are pickled once (their fields by columns) and
    come back as the same edits, every kind of value kept as it was."""
    import pickle

    from sheetreg import forking
    from sheetreg.xlsxpatch import CellEdit, EditBatch

    edits = [
        CellEdit("Asiakkaat", "S2", "Päättynyt 3.11.2026"),
        CellEdit("Laskut", "B7", None),
        CellEdit("Asiakkaat", "K3", dt.date(2026, 11, 3)),
        CellEdit("Asiakkaat", "L3", dt.datetime(2026, 11, 3, 7, 30)),
        CellEdit("Laskut", "E9", 12.5),
        CellEdit("Laskut", "F9", True),
        CellEdit("Laskut", "G9", 3),
    ] * 20_000
    batch = EditBatch(edits)
    first = forking._dumps((sum, (b"", batch), False))
    stream = batch.__dict__["_stream"]
    second = forking._dumps((sum, (b"", batch), False))
    assert batch.__dict__["_stream"] is stream  # not pickled again
    assert memoryview(first[1]).obj is stream and memoryview(second[1]).obj is stream
    back = pickle.loads(first[0], buffers=first[1:])[1][1]
    assert back == edits and type(back) is list
    assert [type(e.value) for e in back[:7]] == [type(e.value) for e in edits[:7]]
    assert pickle.loads(pickle.dumps(batch)) == edits  # protocol 4: in the stream
