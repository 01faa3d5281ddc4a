"""Each running kitchen screen keeps its own queue file of actions waiting for the hub.

Two screens started with the same device id used to share `var/queue-DEVICE.jsonl`: each rewrote the file with its
own list when the hub answered, so one emptied it while the other still held unsent bumps. Now a screen takes an
exclusive lock (`fcntl.flock`) before it uses a queue file; a second screen of the same device that cannot take it
uses the next free file (`queue-DEVICE.2.jsonl`, `.3`…). On start a screen adopts the leftover queue files of its
device that no running screen holds (a screen that crashed or was closed offline): it moves their actions into its
own queue (written to disk first) and sends them; the hub applies each action once (by its ref).

The lock is taken on a file next to the queue (`queue-DEVICE.jsonl.lock`), not on the queue file itself: the queue
is rewritten by replacing the file, which would leave a lock on the old one. Lock files are left in place (deleting
one could let two screens lock two different files of the same name). The lock goes with the process: a screen
killed with kill -9 leaves its file to be adopted.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path


def lock_path(queue: Path) -> Path:
    """The lock file of a queue file."""
    return queue.with_name(queue.name + ".lock")


def _try_lock(queue: Path) -> int | None:
    """An open descriptor holding the exclusive lock of `queue`, or None when a live process holds it."""
    queue.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path(queue), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


class QueueClaim:
    """A queue file held under its lock by this process (until `release`)."""

    def __init__(self, base: Path, path: Path, fd: int) -> None:
        self.base = base
        """The device's queue file name (`var/queue-wok-1.jsonl`)."""
        self.path = path
        """The file this claim holds (the base, or `queue-wok-1.2.jsonl`…)."""
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        """The lock is still held."""
        return self._fd is not None

    def release(self) -> None:
        """Let the file go (another screen may take or adopt it)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def siblings(base: Path) -> list[Path]:
    """The device's queue files that exist: the base, then `base-stem.N.suffix` by N."""
    pattern = re.compile(rf"{re.escape(base.stem)}\.(\d+){re.escape(base.suffix)}")
    found = []
    if base.parent.is_dir():
        for p in base.parent.iterdir():
            m = pattern.fullmatch(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return ([base] if base.exists() else []) + [p for _n, p in sorted(found)]


def claim(base: Path) -> QueueClaim:
    """This screen's queue file: the base when no running screen holds it, else the first free `base.N`."""
    n = 1
    while True:
        path = base if n == 1 else base.with_name(f"{base.stem}.{n}{base.suffix}")
        fd = _try_lock(path)
        if fd is not None:
            return QueueClaim(base, path, fd)
        n += 1


def leftovers(own: QueueClaim) -> list[QueueClaim]:
    """The device's other queue files that no running screen holds, each now locked by the caller (to adopt, then
    release)."""
    out = []
    for path in siblings(own.base):
        if path == own.path:
            continue
        fd = _try_lock(path)
        if fd is not None:
            out.append(QueueClaim(own.base, path, fd))
    return out
