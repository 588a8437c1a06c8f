"""Work on the second core: a forked child computes one result and sends it back pickled.

python-calamine holds the GIL while it turns a sheet into Python values, and so does most
Python work; a forked child overlaps with both, and it shares the parent's memory
copy-on-write (the workbook's bytes are not copied or pickled). (calamine does let go of the
GIL while it parses a sheet: workbook.py parses two big sheets at once in two threads.)
Only Linux forks here: on macOS fork is unsafe with system frameworks and on Windows it
does not exist, so there the work runs in-process when collected.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable
from typing import Any

CAN_FORK = sys.platform.startswith("linux")

FAILED = object()  # what a collector returns when the child died or raised


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


def start(fn: Callable[..., Any], *args: Any, fork: bool = True) -> Collector:
    """Start ``fn(*args)`` beside this process; the returned function waits for its result.

    The collector returns the result, or :data:`FAILED` if the child could not deliver one;
    it must be called or discarded (that reaps the child), and may be called again: it gives
    the same result. ``fork=False`` runs ``fn`` in this process when first collected.
    """
    if not (CAN_FORK and fork):
        return Collector(lambda: _in_process(fn, *args), lazy=True)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, vanish without running the parent's cleanup
        code = 0
        try:
            os.close(read_end)
            payload = pickle.dumps(fn(*args))
            with os.fdopen(write_end, "wb") as out:
                out.write(payload)
        except BaseException:
            code = 1
        os._exit(code)
    os.close(write_end)

    def collect() -> Any:
        try:
            with os.fdopen(read_end, "rb") as fh:
                payload = fh.read()
        finally:  # reaped even when interrupted, so no zombie is left behind
            _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0 or not payload:
            return FAILED
        return pickle.loads(payload)

    return Collector(collect, lazy=False)


def _in_process(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception:
        return FAILED
