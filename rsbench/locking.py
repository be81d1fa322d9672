"""Advisory folder locks, so two rsbench processes never write one run or dataset folder.

``folder_lock(path, what)`` holds an exclusive ``flock`` on ``path/.rsbench.lock`` for the
duration of a ``with`` block. The lock file records the holder's PID and what it is doing, so
the second process gets one line naming both. The kernel drops a ``flock`` when its process
ends, however it ends, so a lock left by a killed process never blocks. The lock file itself
stays (deleting it would let a third process lock a different inode while the second holds the
old one). Where ``fcntl`` does not exist (Windows) the lock is a no-op.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from rsbench.errors import UsageError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = ".rsbench.lock"


def lock_holder(path: Path) -> tuple[int | None, str]:
    """(PID, what) recorded in ``path``'s lock file, or (None, "") when it holds none."""
    try:
        pid, _, what = (Path(path) / LOCK_NAME).read_text().partition(" ")
        return int(pid), what.strip()
    except (OSError, ValueError):
        return None, ""


def active_holder(path: Path) -> tuple[int | None, str] | None:
    """(PID, what) of the live process holding ``path``'s lock, or None when nobody holds it
    (no lock file, or one left by a process that has ended)."""
    if fcntl is None:  # pragma: no cover - Windows: no advisory locks
        return None
    try:
        fd = os.open(Path(path) / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return lock_holder(Path(path))
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


@contextlib.contextmanager
def folder_lock(path: Path, what: str) -> Iterator[Path]:
    """Hold the advisory lock of folder ``path`` (created if needed) while the block runs.

    Raises UsageError "<path> is in use by process <pid> (<what>); ..." when another process
    holds it. ``what`` says what this process is doing (e.g. "rsbench run msc mtln seed 0").
    """
    path = Path(path)
    if fcntl is None:  # pragma: no cover - Windows: no advisory locks
        yield path
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        blocker = next((p for p in (path, *path.parents) if p.exists()), None)
        if blocker is not None and not blocker.is_dir():
            inside = "" if blocker == path else f", so {path} cannot be created inside it"
            raise UsageError(f"{blocker} is a file, not a folder{inside}; give a path that is a "
                             "folder or does not exist yet") from None
        raise UsageError(f"{path} cannot be locked for writing ({exc.strerror}); choose a "
                         "folder you can write to") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, held_for = lock_holder(path)
            who = f"process {pid}" if pid is not None else "another process"
            raise UsageError(f"{path} is in use by {who} ({held_for or what}); wait for it "
                             "to finish or stop it, then run again") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {what}\n".encode(), 0)
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
