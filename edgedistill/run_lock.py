"""One process at a time in a run directory: an advisory lock on ``DIR/.lock`` (``flock``).

The kernel drops the lock when its process dies, however it dies, so a lock left by a killed run is simply taken
over (the file still names the dead process, which is said). The lock is re-entrant within a process: the pipeline
holds it across its stages and each stage takes it again. A second process refuses at once, naming the holder.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

from edgedistill.errors import InputError

LOCK_FILE = ".lock"
_held: dict[Path, int] = {}  # run directory -> depth of re-entry in this process
_guard = threading.Lock()

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; runs are not protected from each other there
    fcntl = None  # type: ignore[assignment]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(text: str) -> tuple[int | None, str]:
    """(PID, command) written in a lock file."""
    first, _, command = text.partition("\n")
    return (int(first) if first.strip().isdigit() else None), command.strip()


def acquire(root: Path) -> int:
    """Open and lock ``root/.lock``; return its descriptor.

    Raises:
        InputError: another process holds it.
    """
    from edgedistill.artifacts import umask_mode
    from edgedistill.progress import console

    fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT, umask_mode())
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid, command = holder(os.pread(fd, 4096, 0).decode(errors="replace"))
        os.close(fd)
        who = f"process {pid}" + (f" ({command})" if command else "") if pid else "another process"
        raise InputError(f"run directory {root} is in use by {who}; wait for it to finish, or choose another "
                         "--out") from None
    pid, _ = holder(os.pread(fd, 4096, 0).decode(errors="replace"))
    if pid and pid != os.getpid() and not pid_alive(pid):
        console.print(f"[dim]{root}: taking over the lock left by process {pid} (no longer running)[/dim]")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n{' '.join([Path(sys.argv[0]).name, *sys.argv[1:]])}\n".encode(), 0)
    return fd


@contextlib.contextmanager
def run_lock(root: Path) -> Iterator[None]:
    """Hold the lock of run directory ``root`` (which must exist) for the block."""
    key = Path(root).resolve()
    with _guard:
        depth = _held.get(key, 0)
        fd = acquire(key) if depth == 0 and fcntl is not None else -1
        _held[key] = depth + 1
    try:
        yield
    finally:
        with _guard:
            _held[key] -= 1
            if _held[key] == 0:
                del _held[key]
                if fd >= 0:
                    os.ftruncate(fd, 0)
                    os.close(fd)  # closing the descriptor releases the flock
