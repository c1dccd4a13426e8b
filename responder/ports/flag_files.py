"""The FlagFileApi port: read and atomically replace flagd flag files in the allowed directories."""

from __future__ import annotations

from typing import Protocol


class FlagFileApi(Protocol):
    """Flag definition files (flagd file sources) below the allowlisted directories."""

    async def read_text(self, path: str, *, timeout_seconds: float) -> str:
        """The whole file as UTF-8 text.

        Raises NotAllowedError outside RESPONDER_FLAGD_FILE_DIRS (symbolic links resolved) or
        for a symbolic link itself, PermanentError when the file is missing, unreadable, not
        UTF-8 or too large, TemporaryError on other IO errors and on timeout.
        """
        ...

    async def replace_text(
        self, path: str, text: str, *, expected: str, timeout_seconds: float
    ) -> None:
        """Atomically replace the file with `text` if it still holds `expected`.

        Writes a temporary file in the same directory (same permission bits), syncs it and
        renames it over the file, so readers see the old or the new text, never a mix.
        Raises TemporaryError when the file changed since it was read (read again and retry),
        and otherwise as `read_text`.
        """
        ...
