"""File writing that never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file lives in the same directory so the final ``os.replace`` is atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes the file private (0600), and writers such as safetensors may replace
        # it: give the result the mode a plain open() would
        tmp_path.chmod(0o666 & ~current_umask())
        fsync_path(tmp_path)  # on the disk before the rename makes it the file
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's or a folder's contents to the disk (folders: where the OS allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some platforms cannot fsync a folder
    finally:
        os.close(fd)


def current_umask() -> int:
    """The process's umask, read without changing it where the OS tells (Linux 4.7+): setting
    it to read it, the portable way, is not thread-safe (a file another thread creates in
    between gets the wrong mode)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def temp_dir(parent: str | os.PathLike, prefix: str) -> Path:
    """A new empty folder in ``parent`` to fill and then rename into place, with the mode a plain
    ``mkdir`` would give it (``tempfile.mkdtemp`` makes folders private, 0700)."""
    path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    path.chmod(0o777 & ~current_umask())
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_unwritten(earlier: Iterable[Path], written: Collection[str]) -> None:
    """Delete the files of an earlier run (``earlier``, listed before the new run wrote
    anything) whose names the new run did not write (``written``): called once every new file
    is on disk, so that a run that fails loses neither its own files nor the earlier ones."""
    for path in earlier:
        if path.name not in written:
            path.unlink(missing_ok=True)
