"""Ctrl-C that never lands inside an import or a thread join while another thread runs.

Two CPython (3.11) traps, both hit by finalize, which draws previews in a thread while the main
thread writes: (1) KeyboardInterrupt inside an import in the main thread can leave the global
import lock held, so the preview thread's next import (and the exit, which joins that thread)
waits forever: the build hung; (2) KeyboardInterrupt inside ``Thread.join`` marks the thread
as stopped although it still runs (``_wait_for_tstate_lock``, bpo-45274), so Python finalizes
under the running preview thread, which is then killed inside matplotlib's C++ code:
``terminate called without an active exception`` (SIGABRT) after the resume hint.
:func:`ctrl_c_outside_imports` holds such a Ctrl-C until the import or the join returns
(polling every few milliseconds), then raises it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

POLL_S = 0.005  # how often a held Ctrl-C checks whether the import or join is over
IMPORT_CODE = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def in_import(frame: FrameType | None) -> bool:
    """True when ``frame`` or a caller of it is running Python's import machinery or waiting
    in ``Thread.join`` (the two places a KeyboardInterrupt leaves broken, see above)."""
    while frame is not None:
        code = frame.f_code
        if code.co_filename in IMPORT_CODE or (code.co_name == "_wait_for_tstate_lock"
                                               and code.co_filename == threading.__file__):
            return True
        frame = frame.f_back
    return False


@contextmanager
def ctrl_c_outside_imports() -> Iterator[None]:
    """Within the block, Ctrl-C raises KeyboardInterrupt as usual, except inside an import or a
    thread join, where it is raised as soon as that returns. No-op outside the main thread or when
    SIGINT has a handler other than Python's default."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    held = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal held
        if in_import(frame):
            held = True
            signal.setitimer(signal.ITIMER_REAL, POLL_S)  # look again soon (SIGALRM)
            return
        if signum == signal.SIGINT or held:
            held = False
            raise KeyboardInterrupt

    old_alarm = signal.signal(signal.SIGALRM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGALRM, old_alarm)
    if held:  # a Ctrl-C arrived during the block's last import
        raise KeyboardInterrupt
