"""Work on the second core: a forked child computes one result and sends it back pickled.

python-calamine holds the GIL while it turns a sheet into Python values, and so does most
Python work; a forked child overlaps with both, and it shares the parent's memory
copy-on-write (the workbook's bytes are not copied or pickled). (calamine does let go of the
GIL while it parses a sheet: workbook.py parses two big sheets at once in two threads.)
Only Linux forks here: on macOS fork is unsafe with system frameworks and on Windows it
does not exist, so there the work runs in-process when collected.

A child started with :func:`start_fed` begins before all its input exists (the fidelity
check reads the original while the patch is made) and is handed the rest through a pipe.

A fork costs in proportion to what the process holds: afterwards every page either side
writes to (a reference count changing is enough) is copied first. Work that needs only bytes
and small arguments (the checks of a written package) is therefore handed to a *spare*: a
child forked at the start of a command, while the process is still small (:func:`spares`),
that waits for one job whose arguments come pickled through a pipe (``light=True``).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import struct
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

CAN_FORK = sys.platform.startswith("linux")

_C = TypeVar("_C", bound="Collector")

FAILED = object()  # what a collector returns when the child died or raised

# The write ends of fed children's inputs (see start_fed): every other child closes them.
# Only this module changes the set, each change one step under the GIL, and only the main
# thread forks, so a child inherits it whole.
_PARENT_ONLY: set[int] = set()


class Collector:
    """What :func:`start` returns. Calling it gives the result, waiting for the child and
    reaping it the first time; later calls give the same result (or FAILED if the first
    call was interrupted). :meth:`discard` is for a result no longer wanted: it reaps the
    child, and where nothing was forked it skips the work instead of doing it.
    """

    def __init__(self, collect: Callable[[], Any], *, lazy: bool) -> None:
        self._collect: Callable[[], Any] | None = collect
        self._lazy = lazy
        self._result: Any = FAILED

    def __call__(self) -> Any:
        collect, self._collect = self._collect, None
        if collect is not None:
            self._result = collect()  # FAILED stays if this raises (e.g. Ctrl-C)
        return self._result

    def discard(self) -> None:
        """Reap the child without wanting its result; run nothing if nothing was forked."""
        if self._lazy:
            self._collect = None
        else:
            self()


# How much a background child (see start) yields to the processes that others wait for.
BACKGROUND_NICENESS = 10


def start(
    fn: Callable[..., Any],
    *args: Any,
    fork: bool = True,
    light: bool = False,
    background: bool = False,
) -> Collector:
    """Start ``fn(*args)`` beside this process; the returned function waits for its result.

    The collector returns the result, or :data:`FAILED` if the child could not deliver one;
    it must be called or discarded (that reaps the child), and may be called again: it gives
    the same result. ``fork=False`` runs ``fn`` in this process when first collected.
    ``light=True``: ``fn`` is a module-level function and ``args`` are worth pickling, so a
    spare (see :func:`spares`) does the work if one is waiting. ``background=True``: the
    result is wanted only after other work, so the child runs at a lower priority (niceness
    :data:`BACKGROUND_NICENESS`) and yields its core to that work when the cores are short.
    """
    if not (CAN_FORK and fork):
        return Collector(lambda: _in_process(fn, *args), lazy=True)
    handed = None if background else _to_spare(light, lambda spare: spare.run(fn, args))
    if handed is not None:
        return handed
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, vanish without running the parent's cleanup
        _close_parent_only()
        if background:
            with contextlib.suppress(OSError):
                os.nice(BACKGROUND_NICENESS)
        _child(read_end, write_end, fn, *args)
    os.close(write_end)
    return Collector(_collector(pid, read_end), lazy=False)


def on_spare(fn: Callable[..., Any], *args: Any) -> Collector | None:
    """``fn(*args)`` handed to a spare, as :func:`start` with ``light=True`` would; None when
    no spare waits (or the arguments do not pickle), instead of forking this process.

    For work whose memory is best kept out of this process, but not at the price of forking
    it as it is now: the caller then does the work itself.
    """
    if not CAN_FORK:
        return None
    return _to_spare(True, lambda spare: spare.run(fn, args))


def on_spare_staged(
    fn: Callable[..., Any], then: Callable[..., Any], *args: Any
) -> tuple[Collector, Collector] | None:
    """``fn(*args)`` and then ``then(result, *args)``, one after the other by one spare;
    None when no spare waits (or the arguments do not pickle).

    Two collectors come back: the first gives ``fn``'s result as soon as it is sent, while
    the spare goes on with ``then``; the second gives ``then``'s and reaps the spare. Both
    must be called or discarded, the first first (once the second is collected, the first
    gives FAILED); if the first gives FAILED, so does the second. For work
    whose next step needs the first's result and nothing else (a patch, then its read-back):
    the result is not sent back to be sent out again.
    """
    if not CAN_FORK:
        return None
    return _to_spare(True, lambda spare: spare.run_staged(fn, then, args))


def on_spare_staged_fed(
    fn: Callable[..., Any], then: Callable[..., Any], *args: Any
) -> tuple[Callable[[Any], None], Collector, Collector] | None:
    """As :func:`on_spare_staged`, for ``fn(receive, *args)`` that gets its last input
    later (as :func:`start_fed`'s work does): ``(send, first, second)``, or None when no spare
    waits. The spare starts on ``args`` at once; ``send(obj)`` hands over what ``receive()``
    gives. Collecting or discarding without a send makes the work fail (both give FAILED).
    """
    if not CAN_FORK:
        return None
    return _to_spare(True, lambda spare: spare.run_staged_fed(fn, then, args))


def _child(read_end: int, write_end: int, fn: Callable[..., Any], *args: Any) -> None:
    code = 0
    try:
        os.close(read_end)
        _write_all(write_end, _dumps(fn(*args)))
    except BaseException:
        code = 1
    os._exit(code)


def _close_parent_only() -> None:
    """In a new child: close the parent's pipe ends that are not its own; the spares are
    the parent's too."""
    for fd in list(_PARENT_ONLY):
        with contextlib.suppress(OSError):
            os.close(fd)
    _PARENT_ONLY.clear()
    _SPARES.clear()


def _collector(pid: int, read_end: int, reader: Any = None) -> Callable[[], Any]:
    """Read the child's (last) result from ``read_end`` (through ``reader``, if it is already
    open there), close it and reap the child."""

    def collect() -> Any:
        try:
            with reader or os.fdopen(read_end, "rb") as fh:
                try:
                    result = _read_message(fh)
                except EOFError:  # died before it had sent a whole result
                    result = FAILED
        finally:  # reaped even when interrupted, so no zombie is left behind
            _, status = os.waitpid(pid, 0)
        return FAILED if os.waitstatus_to_exitcode(status) != 0 else result

    return collect


class Fed(Collector):
    """What :func:`start_fed` returns: a collector whose work also waits for one object,
    handed over with :meth:`send` once the caller has made it."""

    def __init__(
        self, collect: Callable[[], Any], send: Callable[[Any], None], *, lazy: bool
    ) -> None:
        super().__init__(collect, lazy=lazy)
        self._send: Callable[[Any], None] | None = send

    def send(self, obj: Any) -> None:
        """Hand ``obj`` to the work (once; later calls do nothing)."""
        send, self._send = self._send, None
        if send is not None:
            send(obj)

    def __call__(self) -> Any:
        self._send_nothing()
        return super().__call__()

    def discard(self) -> None:
        self._send_nothing()
        super().discard()

    def _send_nothing(self) -> None:
        if self._send is not None:
            self.send(_NOTHING)


_NOTHING = object()  # sent when the caller collects or discards without having sent


def start_fed(fn: Callable[..., Any], *args: Any, light: bool = False) -> Fed:
    """Start ``fn(receive, *args)`` beside this process, before all its input exists.

    ``receive()`` gives the object the caller hands over later with :meth:`Fed.send`
    (pickled through a pipe), or raises EOFError when the collector is called or discarded
    without one; ``fn`` does what it can before it asks. Otherwise as :func:`start`.
    """
    if not CAN_FORK:
        box: list[Any] = []

        def receive_here() -> Any:
            if not box or box[0] is _NOTHING:
                raise EOFError("nothing was sent")
            return box[0]

        return Fed(lambda: _in_process(fn, receive_here, *args), box.append, lazy=True)
    fed = _to_spare(light, lambda spare: spare.run_fed(fn, args))
    if fed is not None:
        return fed
    in_read, in_write = os.pipe()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(in_write)
        _close_parent_only()

        def receive() -> Any:
            with os.fdopen(in_read, "rb") as fh:
                return _read_message(fh)

        _child(read_end, write_end, fn, receive, *args)
    _PARENT_ONLY.add(in_write)
    os.close(in_read)
    os.close(write_end)
    writer: list[threading.Thread] = []

    def send(obj: Any) -> None:
        # The child may still be busy with what it does first, and a pipe holds only 64 KiB:
        # a thread writes, so that this process goes on meanwhile.
        message, error = _pickled(obj)
        thread = threading.Thread(target=_write_all, args=(in_write, message), daemon=True)
        thread.start()
        writer.append(thread)
        if error is not None:
            raise error

    collect_result = _collector(pid, read_end)

    def collect() -> Any:
        for thread in writer:
            thread.join()
        return collect_result()

    return Fed(collect, send, lazy=False)


# A message is a pickle stream and the buffers it refers to (see _dumps); none: "nothing".
_Message = list[Any]

OUT_OF_BAND_BYTES = 1 << 16  # bytes objects this big cross a pipe as they are


def _out_of_band(obj: Any, depth: int = 2) -> Any:
    """``obj`` with its big ``bytes`` (itself, or in tuples down to ``depth``) wrapped so that
    pickle leaves them out of the stream (protocol 5's out-of-band buffers)."""
    if obj.__class__ is bytes and len(obj) >= OUT_OF_BAND_BYTES:
        return pickle.PickleBuffer(obj)
    if depth and obj.__class__ is tuple:
        return tuple(_out_of_band(item, depth - 1) for item in obj)
    return obj


def _dumps(obj: Any) -> _Message:
    """``obj`` pickled for a pipe: the stream, then the big buffers, which are written from
    where they are. A package of megabytes (the arguments, or a :class:`PatchResult`, which
    gives its bytes as such a buffer) is then neither copied into the stream on this side
    nor read whole and then copied out of it on the other."""
    buffers: list[pickle.PickleBuffer] = []
    stream = pickle.dumps(_out_of_band(obj), protocol=5, buffer_callback=buffers.append)
    return [stream, *buffers]


def _pickled(obj: Any) -> tuple[_Message | None, Exception | None]:
    """What :meth:`Fed.send` writes: ``obj`` pickled; nothing (the empty message, so that
    the work fails instead of waiting) when it is :data:`_NOTHING` or does not pickle."""
    if obj is _NOTHING:
        return None, None
    try:
        return _dumps(obj), None
    except Exception as exc:
        return None, exc


def _read_message(fh: Any) -> Any:
    """The next object written by :func:`_write_all` (EOFError: none, or the empty one).

    The sizes come first: a later sibling may hold the write end open, so no EOF comes.
    """
    head = fh.read(8)
    count = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
    if not 0 < count < 1 << 20:
        raise EOFError("nothing was sent")
    sizes = fh.read(8 * count)
    if len(sizes) != 8 * count:
        raise EOFError("nothing was sent")
    chunks = []
    for size in struct.unpack(f"<{count}Q", sizes):
        chunk = fh.read(size)
        if len(chunk) != size:
            raise EOFError("nothing was sent")
        chunks.append(chunk)
    return pickle.loads(chunks[0], buffers=chunks[1:])


def _write_all(fd: int, message: _Message | None, *, last: bool = True) -> None:
    """Write one message (its sizes, then each piece; None says "nothing"), and with
    ``last`` close ``fd``."""
    try:
        views = [memoryview(piece).cast("B") for piece in message or ()]
        head = struct.pack(f"<{1 + len(views)}Q", len(views), *(v.nbytes for v in views))
        # Each piece goes from where it is: joined, a package would be copied, and held
        # twice while the child is not reading yet.
        with contextlib.suppress(OSError):  # the child is gone: its collector says FAILED
            for piece in [memoryview(head), *views]:
                rest = piece
                while rest:
                    rest = rest[os.write(fd, rest) :]
    finally:  # closed whatever happened, so that the child is never left waiting
        if last:
            _PARENT_ONLY.discard(fd)  # before it is closed: a later child must not close its reuse
            with contextlib.suppress(OSError):
                os.close(fd)


# --- spares ------------------------------------------------------------------------------------

# Spares waiting for a job, forked by spares() (the last one is taken first).
_SPARES: list[_Spare] = []


class _Spare:
    """A child forked while this process was small, waiting for one job (see :func:`spares`)."""

    def __init__(self, pid: int, job_fd: int, result_fd: int) -> None:
        self.pid, self.job_fd, self.result_fd = pid, job_fd, result_fd

    def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Collector:
        """Hand it ``fn(*args)``; the collector as :func:`start`'s."""
        thread = self._send_job(fn, args, fed=False)
        collect_result = _collector(self.pid, self.result_fd)

        def collect() -> Any:
            try:
                thread.join()
            finally:  # reaped even when interrupted
                result = collect_result()
            return result

        return Collector(collect, lazy=False)

    def run_fed(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Fed:
        """Hand it ``fn(receive, *args)``; the collector as :func:`start_fed`'s."""
        threads = [self._send_job(fn, args, fed=True)]
        send = self._sender(threads)
        collect_result = _collector(self.pid, self.result_fd)

        def collect() -> Any:
            try:
                for thread in threads:
                    thread.join()
            finally:  # reaped even when interrupted
                result = collect_result()
            return result

        return Fed(collect, send, lazy=False)

    def _sender(self, threads: list[threading.Thread]) -> Callable[[Any], None]:
        """What hands fed work (its job written by ``threads[0]``) its input, to be called
        once: the object (or :data:`_NOTHING`, the empty message) is written to the job's
        pipe after the job, by a thread added to ``threads``, and the pipe is closed."""

        def send(obj: Any) -> None:
            message, error = _pickled(obj)
            job = threads[0]

            def after_the_job() -> None:
                job.join()  # one message after the other on the same pipe
                _write_all(self.job_fd, message)

            thread = threading.Thread(target=after_the_job, daemon=True)
            thread.start()
            threads.append(thread)
            if error is not None:
                raise error

        return send

    def run_staged(
        self, fn: Callable[..., Any], then: Callable[..., Any], args: tuple[Any, ...]
    ) -> tuple[Collector, Collector]:
        """Hand it ``fn(*args)``, then ``then(result, *args)``; see :func:`on_spare_staged`."""
        return self._staged([self._send_job(fn, args, fed=False, then=then)])

    def run_staged_fed(
        self, fn: Callable[..., Any], then: Callable[..., Any], args: tuple[Any, ...]
    ) -> tuple[Callable[[Any], None], Collector, Collector]:
        """Hand it ``fn(receive, *args)``, then ``then(result, *args)``; see
        :func:`on_spare_staged_fed`."""
        threads = [self._send_job(fn, args, fed=True, then=then)]
        unsent = [self._sender(threads)]

        def send(obj: Any) -> None:  # once; later calls do nothing
            if unsent:
                unsent.pop()(obj)

        # Collected or discarded without a send: the work is told nothing comes (it fails).
        first, second = self._staged(threads, before=lambda: send(_NOTHING))
        return send, first, second

    def _staged(
        self, threads: list[threading.Thread], before: Callable[[], None] | None = None
    ) -> tuple[Collector, Collector]:
        """The two collectors of staged work whose job (and input) ``threads`` write."""
        results = os.fdopen(self.result_fd, "rb")
        collect_result = _collector(self.pid, self.result_fd, results)
        lock = threading.Lock()
        read: list[bool] = []  # whether the first result is off the pipe

        def join() -> None:
            for thread in list(threads):
                thread.join()

        def collect_first() -> Any:
            if before is not None:
                before()
            with lock:
                if read:  # the second was collected first: this one was let go unread
                    return FAILED
                try:
                    join()
                finally:
                    read.append(True)
                    try:
                        first = _read_message(results)
                    except EOFError:  # died before it had sent a whole result
                        first = FAILED
            return first

        def collect_then() -> Any:
            # The results come in order on the pipe. The first collector is not kept here:
            # its result (a package) goes with the caller's last use of it.
            if before is not None:
                before()
            with lock:
                if not read:
                    read.append(True)
                    with contextlib.suppress(EOFError):
                        _read_message(results)
            return collect_result()

        return Collector(collect_first, lazy=False), Collector(collect_then, lazy=False)

    def _send_job(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        *,
        fed: bool,
        then: Callable[..., Any] | None = None,
    ) -> Any:
        message = _dumps((fn, args, fed, then))
        thread = threading.Thread(
            target=_write_all, args=(self.job_fd, message), kwargs={"last": not fed}, daemon=True
        )
        thread.start()
        return thread

    def release(self) -> None:
        """No job for it: it reads the end of its pipe and exits; reaped here."""
        _PARENT_ONLY.discard(self.job_fd)
        for fd in (self.job_fd, self.result_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _to_spare(light: bool, hand_over: Callable[[_Spare], _C]) -> _C | None:
    """``hand_over(spare)`` for light work when a spare waits; None when none does, or when
    the work's arguments do not pickle (the spare is released; the caller forks as usual)."""
    spare = _SPARES.pop() if light and _SPARES else None
    if spare is None:
        return None
    try:
        return hand_over(spare)
    except Exception:
        spare.release()
        return None


def _serve(job_fd: int, result_fd: int) -> None:
    """A spare's life: wait for the job, do it, send the result, vanish (no job: the parent
    released it)."""
    code = 0
    try:
        with os.fdopen(job_fd, "rb") as fh:
            fn, args, fed, then = _read_message(fh)
            result = fn(lambda: _read_message(fh), *args) if fed else fn(*args)
        if then is not None:  # the first result goes out at once, then the second is made
            _write_all(result_fd, _dumps(result), last=False)
            result = then(result, *args)
        _write_all(result_fd, _dumps(result))
    except BaseException:
        code = 1
    os._exit(code)


@contextlib.contextmanager
def spares(count: int, *modules: str) -> Iterator[None]:
    """Fork ``count`` spares now, for the light work (``light=True``) of what runs inside;
    those not used are released on the way out.

    Called before a command reads the workbook, while the process holds little: a spare
    shares nothing of the register that would be copied page by page later, and a job's
    arguments (a package's bytes, the edits) cost little to pickle. ``modules``, which the
    jobs need, are imported first (here, so that the spares share them). Nested use is fine;
    without fork it forks nothing. As a decorator it does this around every call.
    """
    import importlib

    mine: list[_Spare] = []
    if CAN_FORK:
        for name in modules:
            importlib.import_module(name)
        for _ in range(count):
            fds: list[int] = []
            try:
                fds += os.pipe()
                fds += os.pipe()
                pid = os.fork()
            except OSError:  # out of file descriptors or processes: the work forks as it comes
                for fd in fds:
                    os.close(fd)
                break
            job_read, job_write, result_read, result_write = fds
            if pid == 0:
                os.close(job_write)
                os.close(result_read)
                _close_parent_only()
                _serve(job_read, result_write)
            os.close(job_read)
            os.close(result_write)
            _PARENT_ONLY.add(job_write)
            mine.append(_Spare(pid, job_write, result_read))
        _SPARES.extend(mine)
    try:
        yield
    finally:
        for spare in mine:
            if spare in _SPARES:
                _SPARES.remove(spare)
                spare.release()


def _in_process(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        return FAILED
