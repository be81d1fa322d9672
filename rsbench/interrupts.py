"""Ctrl-C that never lands inside an import while another thread may import.

CPython (3.11) can leave its global import lock held when KeyboardInterrupt interrupts an import
in the main thread; any later import in another thread then waits forever, and so does the
interpreter's exit, which joins that thread. Finalize draws previews in a thread while the main
thread writes (and lazily imports pyarrow, pyogrio, ...): a Ctrl-C there hung the build or
ended it with ``terminate called without an active exception``. :func:`ctrl_c_outside_imports`
holds such a Ctrl-C until the import is done (polling every few milliseconds), then raises it.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

POLL_S = 0.005  # how often a held Ctrl-C checks whether the import is over
IMPORT_CODE = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>")


def in_import(frame: FrameType | None) -> bool:
    """True when ``frame`` or a caller of it is running Python's import machinery."""
    while frame is not None:
        if frame.f_code.co_filename in IMPORT_CODE:
            return True
        frame = frame.f_back
    return False


@contextmanager
def ctrl_c_outside_imports() -> Iterator[None]:
    """Within the block, Ctrl-C raises KeyboardInterrupt as usual, except inside an import,
    where it is raised as soon as the import returns. No-op outside the main thread or when
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
