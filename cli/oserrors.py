"""One plain line for the operating-system errors a user causes (full disk, a file where a folder
should be, permission denied), and the clean-up after a full disk.

The CLI's central handler asks :func:`os_error_line` before falling back to "unexpected ...";
errors it does not recognise (a missing file inside rsbench's own folders, say) stay reported
as bugs.
"""

from __future__ import annotations

import errno
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path

from rsbench.diskspace import size_text

# commands whose work continues with --resume after an interruption or a full disk
RESUMABLE = ("build-psc", "build-msc", "build-transfer", "build-taiga", "build-hsi", "run")
REPEATABLE = ("reproduce",)  # the same command again continues (its runs resume by themselves)
# what temporary files rsbench writes are called (finished files are renamed from them)
TMP_PATTERNS = ("*.tmp", "*.tmp.*")


def option_values(args: Sequence[str], name: str) -> list[str]:
    """Every value given to option ``name`` (``--out X`` or ``--out=X``) in ``args``."""
    out = []
    for i, a in enumerate(args):
        if a == name and i + 1 < len(args):
            out.append(args[i + 1])
        elif a.startswith(name + "="):
            out.append(a.split("=", 1)[1])
    return out


def command_of(args: Sequence[str]) -> str | None:
    """The subcommand name in ``args`` (the first word that is not a global option)."""
    for a in args:
        if not a.startswith("-"):
            return a
    return None


def resume_command(args: Sequence[str]) -> str | None:
    """The command line that continues an interrupted build or run, or None for other commands."""
    if command_of(args) not in (*RESUMABLE, *REPEATABLE):
        return None
    rest = [a for a in args if a != "--debug"]
    if "--resume" not in rest and command_of(args) in RESUMABLE:
        rest.append("--resume")
    return shlex.join(["rsbench", *rest])


def output_folders(args: Sequence[str]) -> list[Path]:
    """The folders this command writes into: its ``--out`` values (``run``: default ``runs``)."""
    outs = option_values(args, "--out")
    if not outs and command_of(args) == "run":
        outs = ["runs"]
    return [Path(o) for o in outs]


def remove_temporaries(folders: Sequence[Path]) -> int:
    """Delete rsbench's temporary files and folders (``*.tmp``) under ``folders``; bytes freed.

    Safe after a failed write: a temporary is only ever renamed into place once complete, and a
    resumed build or run writes it again.
    """
    freed = 0
    for folder in folders:
        if not folder.is_dir():
            continue
        for pattern in TMP_PATTERNS:
            for p in sorted(folder.rglob(pattern), reverse=True):
                try:
                    if p.is_dir() and not p.is_symlink():
                        freed += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
                        shutil.rmtree(p)
                    elif p.exists():
                        freed += p.stat().st_size
                        p.unlink()
                except OSError:
                    continue
    return freed


def mb(n: int) -> str:
    return size_text(n)


def _existing_parent(path: Path) -> Path:
    for p in (path, *path.parents):
        if p.exists():
            return p
    return Path(".")


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` (or ``path`` itself) that exists and is not a folder."""
    for p in (path, *path.parents):
        if p.exists():
            return None if p.is_dir() else p
    return None


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT, or a library's own error that carries the OS message (pyarrow, GDAL)."""
    return (getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
            or "No space left on device" in str(exc))


def disk_full_line(exc: BaseException, args: Sequence[str]) -> str:
    """The message for a full disk; removes the temporary files the command left behind."""
    outs = output_folders(args)
    name = getattr(exc, "filename", None)
    where = Path(name) if name else (outs[0] if outs else Path("."))
    freed = remove_temporaries(outs or [where.parent])
    try:
        free = shutil.disk_usage(_existing_parent(where)).free
    except OSError:
        free = 0
    resume = resume_command(args)
    again = f"then rerun: {resume}" if resume else "then run the command again"
    if freed:
        need = (f"free more than {mb(freed)} (what the failed write had reached; its temporary "
                "files are removed)")
    else:
        need = "free space"
    return (f"no space left on the disk of {where} ({mb(free)} free); {need} there or choose "
            f"an --out on another disk, {again}")


def os_error_line(exc: OSError, args: Sequence[str]) -> str | None:
    """One line for an OSError a user causes, or None when it looks like a bug."""
    name = exc.filename
    path = Path(name) if name else None
    code = exc.errno
    if is_disk_full(exc):
        return disk_full_line(exc, args)
    if path is None:
        return None
    if code == errno.ENOTDIR or (code == errno.EEXIST and not path.is_dir()):
        blocker = _file_in_the_way(path) or path
        inside = "" if blocker == path else f", so {path} cannot be created inside it"
        return (f"{blocker} is a file, not a folder{inside}; give a path that is a folder or "
                "does not exist yet (e.g. another --out)")
    if code == errno.EISDIR:
        target = Path(exc.filename2) if getattr(exc, "filename2", None) else path
        return f"{target} is a folder, but a file is written there; give a file path instead"
    if code in (errno.EACCES, errno.EPERM):
        return (f"{path} cannot be accessed (permission denied); fix its permissions "
                "(or those of its folder) or choose another path")
    if code == errno.EROFS:
        return f"{path} is on a read-only file system; choose a writable path (e.g. another --out)"
    return None


def interrupted_line(args: Sequence[str]) -> str:
    """What Ctrl-C prints: the command that continues the work, where there is one."""
    resume = resume_command(args)
    if resume:
        return f"interrupted; continue with: {resume}"
    return "interrupted"
