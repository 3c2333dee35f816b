"""Write files whole or not at all: every file poselit writes goes through :func:`write_atomic`,
every folder it creates through :func:`make_folder`.

The bytes go to a temporary file in the destination's own folder (same file system), which
is renamed over the destination only once it is complete. A write that fails half-way
(disk full, quota, a killed process) leaves the previous file, if any, untouched and no
half-written file behind. The file gets the permissions of any new file (``0o666`` minus
the umask, usually ``-rw-r--r--``), not the private ``0o600`` of :mod:`tempfile`.

A process killed mid-write (``SIGKILL``, power cut of the process) cannot remove its
temporary: the name (:func:`temporary_path`, also used by writers that stream into their
temporary, such as :class:`poselit.video.io.VideoOutputs`) holds the writer's process id, so
that a later run can find and remove those whose writer is gone
(:func:`remove_abandoned_temporaries`).

No ``fsync``: this protects against failed and interrupted writes, not against power loss.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from pathlib import Path

#: A temporary of :func:`temporary_path`: ``.NAME.PID-TOKEN.tmp`` or ``.STEM.PID-TOKEN.tmp.SUFFIX``.
TEMPORARY_NAME = re.compile(r"\..+\.(?P<pid>[0-9]+)-[0-9a-f]{8}\.tmp(\.[^.]+)?")


def temporary_path(path: Path, *, keep_suffix: bool = False) -> Path:
    """Where a writer of ``path`` writes before renaming it into place: beside it (the same
    file system, so that the rename is atomic), hidden, ``.NAME.PID-TOKEN.tmp``. The writer's
    process id tells :func:`remove_abandoned_temporaries` whether it still runs; a random
    token keeps two writers of one process apart. The ``.tmp`` ending keeps readers of a
    folder's ``*.json`` from taking a temporary for a result; ``keep_suffix`` puts the
    suffix last instead (``.STEM.PID-TOKEN.tmp.SUFFIX``), for writers that pick the format
    by it (OpenCV a video's container).

    >>> temporary_path(Path("out/photo.json")).name  # doctest: +ELLIPSIS
    '.photo.json....tmp'
    >>> temporary_path(Path("out/clip.mp4"), keep_suffix=True).name  # doctest: +ELLIPSIS
    '.clip....tmp.mp4'
    """
    stem, suffix = (path.stem, path.suffix) if keep_suffix else (path.name, "")
    return path.with_name(f".{stem}.{os.getpid()}-{secrets.token_hex(4)}.tmp{suffix}")


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text is encoded as UTF-8) to ``path`` atomically; returns the path.

    Raises ``OSError`` naming ``path`` when the write fails; nothing is left behind then.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary = temporary_path(path)
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


def remove_abandoned_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries (:func:`temporary_path`) in ``folder`` whose writer process no
    longer runs (killed mid-write); returns them. Those of running processes stay.

    POSIX only: elsewhere nothing is removed (there is no harmless way to ask whether a process
    id runs). A folder shared between machines may hold another machine's temporaries: a
    process id is only asked on this one.
    """
    if os.name != "posix":
        return []
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            match = TEMPORARY_NAME.fullmatch(entry.name)
            if match and entry.is_file(follow_symlinks=False) and not _running(int(match["pid"])):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _running(pid: int) -> bool:
    """Whether a process ``pid`` runs on this machine (POSIX: signal 0 checks without sending)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
