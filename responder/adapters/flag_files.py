"""The FlagFileApi port on local disk: read and atomically replace flagd flag files.

Only files below RESPONDER_FLAGD_FILE_DIRS are touched. Each call checks the path lexically
(`check_flag_file`), then resolves the parent directory's symbolic links and checks again, and
opens the file itself with O_NOFOLLOW: a link is refused (a rename would replace the link,
not the file flagd reads).

A replace is compare-and-swap: the file is read again and must still hold the text the action
read (otherwise TemporaryError, so the step re-reads and retries); then the new text goes to a
temporary file in the same directory with the same permission bits (and owner, when allowed),
is fsynced and renamed over the file, and the directory is fsynced. Replaces of one file are
serialised within the process. Blocking IO runs in a thread under `timeout_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from responder.core.file_allowlists import SETTING_NAME, check_flag_file, normalise_dir
from responder.errors import NotAllowedError, PermanentError, TemporaryError

T = TypeVar("T")
MAX_FILE_BYTES = 4 * 1024 * 1024


class LocalFlagFiles:
    """Flag files on this machine's file system (a volume shared with flagd)."""

    def __init__(self, dirs: Sequence[str], *, max_bytes: int = MAX_FILE_BYTES) -> None:
        self._dirs = tuple(normalise_dir(entry) for entry in dirs)
        self._max_bytes = max_bytes
        self._locks: dict[str, asyncio.Lock] = {}

    def _locate(self, path: str) -> Path:
        check_flag_file(path, self._dirs)
        target = Path(path)
        parent = Path(os.path.realpath(target.parent))
        allowed = [Path(os.path.realpath(entry)) for entry in self._dirs]
        if not any(parent.is_relative_to(entry) for entry in allowed):
            raise NotAllowedError(
                f"flag file {path!r} refused: its directory resolves (through a symbolic "
                f"link) to {str(parent)!r}, which is not below {SETTING_NAME}"
            )
        return parent / target.name

    def _read(self, real: Path, shown: str) -> tuple[str, os.stat_result]:
        with _os_errors(shown):
            fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise PermanentError(f"flag file {shown!r} is not a regular file")
                data = handle.read(self._max_bytes + 1)
        if len(data) > self._max_bytes:
            raise PermanentError(
                f"flag file {shown!r} is larger than {self._max_bytes} bytes; refusing to load it"
            )
        try:
            return data.decode("utf-8"), info
        except UnicodeDecodeError:
            raise PermanentError(f"flag file {shown!r} is not UTF-8 text") from None

    def _replace(self, real: Path, shown: str, text: str, expected: str) -> None:
        current, info = self._read(real, shown)
        if current != expected:
            raise TemporaryError(
                f"flag file {shown!r} changed while responder was editing it; reading it again",
                delay=0.2,
            )
        with _os_errors(shown):
            fd, temporary = tempfile.mkstemp(
                dir=real.parent, prefix=f".{real.name}.", suffix=".responder-tmp"
            )
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(text.encode("utf-8"))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(temporary, stat.S_IMODE(info.st_mode))
                with contextlib.suppress(PermissionError):
                    os.chown(temporary, info.st_uid, info.st_gid)
                os.replace(temporary, real)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
            directory = os.open(real.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    async def read_text(self, path: str, *, timeout_seconds: float) -> str:
        """The file's text (see FlagFileApi.read_text)."""
        real = self._locate(path)
        text, _ = await _in_thread(lambda: self._read(real, path), path, timeout_seconds)
        return text

    async def replace_text(
        self, path: str, text: str, *, expected: str, timeout_seconds: float
    ) -> None:
        """Compare-and-swap the file's text (see FlagFileApi.replace_text)."""
        real = self._locate(path)
        lock = self._locks.setdefault(str(real), asyncio.Lock())
        async with lock:
            await _in_thread(
                lambda: self._replace(real, path, text, expected), path, timeout_seconds
            )


async def _in_thread(call: Callable[[], T], shown: str, timeout_seconds: float) -> T:
    try:
        return await asyncio.wait_for(asyncio.to_thread(call), timeout_seconds)
    except TimeoutError:
        raise TemporaryError(
            f"flag file {shown!r}: file system call timed out after {timeout_seconds:g} s"
        ) from None


@contextlib.contextmanager
def _os_errors(shown: str) -> Iterator[None]:
    """Translate OSError into our errors, each saying what to do."""
    try:
        yield
    except FileNotFoundError:
        raise PermanentError(
            f"flag file {shown!r} does not exist; point the path parameter at the file flagd "
            "reads (--uri file:...)"
        ) from None
    except PermissionError as exc:
        raise PermanentError(
            f"flag file {shown!r}: permission denied ({exc.strerror}); responder needs read "
            "and write access to the file and its directory"
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotAllowedError(
                f"flag file {shown!r} is a symbolic link; responder replaces files by rename, "
                "which would replace the link: name the real file"
            ) from None
        if exc.errno == errno.EROFS:
            raise PermanentError(
                f"flag file {shown!r} is on a read-only file system (a ConfigMap volume?); "
                "change the source itself instead"
            ) from None
        raise TemporaryError(f"flag file {shown!r}: {exc.strerror or exc}") from exc
