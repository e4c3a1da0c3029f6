"""Resume safety for studies: fingerprints, atomic writes, readable checkpoints and a lock.

A study writes one checkpoint per finished trial (row x seed) into its output folder. A
checkpoint is reused by ``resume`` only when its fingerprint matches the trial's, and the
fingerprint covers every setting that changes a number (the settings, the data content
digest, the resolved backend config, the seed and the physnn version), so a changed setting
or new data at the same path always reruns.

Files are written atomically (a temporary file in the same folder, flushed, fsynced and
renamed over the target), so a kill mid-write leaves either the old file or the new one,
never a truncated one. A file that cannot be parsed (written elsewhere, or a damaged disk) is
reported by name with the fix. A :class:`FolderLock` keeps two runs from interleaving their
writes in one output folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from .settings import UsageError

__all__ = [
    "CorruptResultError",
    "FolderLock",
    "FolderLockedError",
    "atomic_write_bytes",
    "atomic_write_text",
    "fingerprint",
    "read_json",
    "safe_name",
]


class CorruptResultError(UsageError):
    """A results file in the output folder cannot be read (truncated or not physnn's)."""


class FolderLockedError(UsageError):
    """Another run holds the lock on the output folder."""


def fingerprint(payload: Any) -> str:
    """SHA-256 (hex, 32 characters) of ``payload`` as canonical JSON (sorted keys)."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def safe_name(label: str) -> str:
    """``label`` as a file name: path separators, colons and spaces replaced."""
    return "".join(c if c.isalnum() or c in "-_.=,+" else "-" for c in label)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode())


def read_json(path: Path) -> Any:
    """Parse the JSON file ``path``; a truncated or foreign file raises a message naming it."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptResultError(
            f"{path} is truncated or not a physnn results file ({err}); physnn writes "
            "atomically, so it was written elsewhere: delete it (its trial is rerun) or "
            "choose another --out"
        ) from err


class FolderLock:
    """An exclusive advisory lock on an output folder (``<folder>/.physnn.lock``).

    The lock is an ``fcntl.flock`` on the lock file, released by the operating system when
    the process dies, so a killed run never leaves a stale lock. On platforms without
    ``fcntl`` the lock is a no-op.

    Args:
        folder: the output folder (created if missing).
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / ".physnn.lock"
        self._file: IO[str] | None = None

    def __enter__(self) -> FolderLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")  # held open for the lock's lifetime
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; nothing to hold
            self._file = handle
            return self
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            handle.close()
            raise FolderLockedError(
                f"{self.path.parent} is in use by another physnn run (pid {owner}); wait for "
                "it to finish or choose another --out"
            ) from err
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        self._file = handle
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the flock
            self._file = None
