"""Write files whole or not at all: every file poselit writes goes through :func:`write_atomic`,
every folder it creates through :func:`make_folder`.

The bytes go to a temporary file in the destination's own folder (same file system), which
is renamed over the destination only once it is complete. A write that fails half-way
(disk full, quota, a killed process) leaves the previous file, if any, untouched and no
half-written file behind. The file gets the permissions of any new file (``0o666`` minus
the umask, usually ``-rw-r--r--``), not the private ``0o600`` of :mod:`tempfile`.

No ``fsync``: this protects against failed and interrupted writes, not against power loss.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text is encoded as UTF-8) to ``path`` atomically; returns the path.

    Raises ``OSError`` naming ``path`` when the write fails; nothing is left behind then.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        # O_EXCL: never follow or reuse an existing file; mode 0o666: the umask applies
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "wb") as file:
            file.write(payload)
        os.replace(temporary, path)
    except BaseException as err:  # also KeyboardInterrupt: leave nothing behind
        with contextlib.suppress(OSError):  # e.g. the folder is not one: there is nothing to remove
            temporary.unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OSError(f"{path}: could not write the file ({err.strerror or err})") from err
        raise
    return path


def make_folder(path: str | os.PathLike) -> Path:
    """Create the folder ``path`` (and its parents) unless it exists; returns it.

    Raises ``OSError`` naming ``path`` when it cannot be created (read-only file system, a
    file in the way, no permission), so the command line can end in one line saying which.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OSError(f"{path}: could not create the folder ({err.strerror or err})") from err
    return path
