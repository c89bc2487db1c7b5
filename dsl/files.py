"""Reading scenario files and writing output files, safely.  Standard library only.

read_source() is the one way a scenario (or a golden trace) is read: only a
regular file, at most MAX_SOURCE_BYTES, and a FIFO never blocks it.
write_file() is the one way mmscn writes a file (`explore --witness`, the
REPL's `:save`, `test --update` goldens, `--junit-xml`): never through a
symlink, never over an existing file unless asked to, atomically (a temporary
file in the same folder, fsync, rename), so a reader never sees half a file.
"""
from __future__ import annotations

import errno
import os
import stat

from .diagnostics import printable

# A scenario is a few kilobytes; a benchmark's generated one a few megabytes.
# Beyond this the file is not a scenario (/dev/zero, a log, an image).
MAX_SOURCE_BYTES = 64 << 20


class NotASource(OSError):
    """A path that is not read as a scenario: not a regular file, or too big.
    ``reason`` is the whole explanation (read_error shows it as it is)."""

    def __init__(self, path: str, reason: str):
        super().__init__(errno.EINVAL, reason, path)
        self.reason = reason


class Unwritable(Exception):
    """A file mmscn will not or cannot write; str() is `PATH: why`, one line."""

    def __init__(self, path: str, reason: str):
        super().__init__(printable(f"{path}: {reason}"))
        self.path, self.reason = path, reason


def _kind(mode: int) -> str:
    for test, what in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return what
    return "not a regular file"


def _check_source(path: str, st) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if not stat.S_ISREG(st.st_mode):
        raise NotASource(path, f"is {_kind(st.st_mode)}, not a scenario file")
    if st.st_size > MAX_SOURCE_BYTES:
        raise NotASource(path, _too_big())


def _too_big() -> str:
    return f"is larger than {MAX_SOURCE_BYTES >> 20} MiB, the most a scenario file may be"


def read_source(path) -> bytes:
    """The bytes of a regular file of at most MAX_SOURCE_BYTES; OSError (NotASource, or what
    the system said) otherwise.  A symlink to a regular file is read like the file."""
    _check_source(path, os.stat(path))
    # O_NONBLOCK: should a FIFO replace the file between the stat and the open, the open
    # does not wait for a writer (and fstat below refuses it)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_source(path, os.fstat(fd))
        chunks, size = [], 0
        while True:       # /proc files say size 0: read to the end, but never past the cap
            b = os.read(fd, min(1 << 20, MAX_SOURCE_BYTES + 1 - size))
            if not b:
                break
            chunks.append(b)
            size += len(b)
            if size > MAX_SOURCE_BYTES:
                raise NotASource(path, _too_big())
        return b"".join(chunks)
    finally:
        os.close(fd)


def _inside(path: str, root: str) -> bool:
    root = os.path.realpath(root)
    return os.path.commonpath([root, path]) == root


FORCE_HINT = "pass --force to replace it"


def check_target(path: str, *, force: bool = False, within=None, keep=(), hint: str = FORCE_HINT) -> None:
    """Raise Unwritable if write_file(path, ...) with the same options would refuse.

    ``force``: an existing regular file may be replaced.  ``within``: folders the file
    must resolve inside (goldens stay in the suite's tree); a file there may be replaced
    without ``force``.  ``keep``: files that are never replaced, even with ``force``
    (the scenario a witness is written for).  ``hint`` says how to replace a file that
    exists (the REPL's `:save!`).  Commands call this before long work, so a refusal
    comes before it, not after.
    """
    folder = os.path.dirname(path) or "."
    if within is not None:
        where = os.path.join(os.path.realpath(folder), os.path.basename(path))
        if not any(_inside(where, root) for root in within):
            raise Unwritable(path, "resolves outside " + " and ".join(within) + "; refusing to write there")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise Unwritable(path, f"cannot write: {e.strerror or e}")
    if stat.S_ISLNK(st.st_mode):
        raise Unwritable(path, "is a symlink; refusing to write through a symlink")
    if stat.S_ISDIR(st.st_mode):
        raise Unwritable(path, "is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise Unwritable(path, f"is {_kind(st.st_mode)}; refusing to replace it")
    for k in keep:
        try:
            if os.path.samestat(st, os.stat(k)):
                raise Unwritable(path, "is the scenario file itself; refusing to replace it")
        except OSError:
            pass
    if not force and within is None:
        raise Unwritable(path, f"exists; {hint}")


def write_file(path: str, data, *, force: bool = False, within=None, keep=(), parents: bool = False,
               hint: str = FORCE_HINT) -> None:
    """Write ``data`` (str: UTF-8, newlines as given; bytes; or an iterable of either,
    written as it comes, for output too long to hold) to ``path`` safely.

    The options are check_target's; ``parents`` creates missing folders.  The file
    gets the mode a new file would get (0666 less the umask), or the mode of the file
    it replaces.  Raises Unwritable, whose text says which path and why.
    """
    check_target(path, force=force, within=within, keep=keep, hint=hint)
    chunks = (data,) if isinstance(data, (str, bytes)) else data
    chunks = (c.encode("utf-8") if isinstance(c, str) else c for c in chunks)
    folder = os.path.dirname(path) or "."
    if parents and not os.path.isdir(folder):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as e:
            raise Unwritable(path, f"cannot create its folder: {e.strerror or e}")
        check_target(path, force=force, within=within, keep=keep, hint=hint)   # the new folders may have moved it
    try:
        _write_atomically(path, folder, chunks, force or within is not None)
    except Unwritable:
        raise
    except FileExistsError:
        raise Unwritable(path, f"exists; {hint}")
    except OSError as e:
        raise Unwritable(path, f"cannot write: {e.strerror or e}")


def _write_atomically(path: str, folder: str, chunks, replace: bool) -> None:
    import secrets
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)     # the umask applies, as to the file itself
            break
        except FileExistsError:
            continue
    else:
        raise Unwritable(path, "cannot write: no free name for a temporary file in its folder")
    try:
        try:
            try:
                old = os.lstat(path)
                if stat.S_ISREG(old.st_mode):
                    os.fchmod(fd, stat.S_IMODE(old.st_mode))    # a replaced file keeps its mode
            except FileNotFoundError:
                pass
            for data in chunks:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            # the last look: rename() replaces a symlink rather than following it, but
            # one that appeared since the check is still refused
            check_target(path, force=True)
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)      # fails if the path exists now: no window for a race
            except FileExistsError:
                raise
            except OSError:             # a file system without hard links: look once more, then rename
                check_target(path)
                os.replace(tmp, path)
        _sync_folder(folder)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _sync_folder(folder: str) -> None:
    """The rename itself survives a crash once the folder is synced (where that works)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
