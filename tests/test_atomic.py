"""Files are written whole or not at all (``poselit.atomic.write_atomic``), with normal
permissions. Failed writes are real: a child process whose file-size limit
(``RLIMIT_FSIZE``) stops the write half-way, as a full disk does."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest

from poselit.atomic import write_atomic

resource = pytest.importorskip("resource", reason="RLIMIT_FSIZE needs a POSIX system")


def normal_mode() -> int:
    """The permissions of a new file under this process's umask (``0o666 & ~umask``)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def run_limited(limit: int, code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``code`` in a child Python whose writes stop at ``limit`` bytes per file (EFBIG,
    like a full disk, instead of the default SIGXFSZ)."""
    prologue = textwrap.dedent(
        f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", prologue + textwrap.dedent(code)], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_write_atomic_writes_text_and_bytes_with_normal_permissions(tmp_path):
    text = write_atomic(tmp_path / "a.json", '{"é": 1}\n')
    data = write_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert text.read_bytes() == '{"é": 1}\n'.encode() and data.read_bytes() == b"\x00\x01"
    assert stat.S_IMODE(text.stat().st_mode) == stat.S_IMODE(data.stat().st_mode) == normal_mode()
    write_atomic(text, "replaced")
    assert text.read_text() == "replaced" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]


def test_a_write_failing_half_way_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "doc.json"
    target.write_text("old and complete")
    result = run_limited(
        4096,
        f"""
        from poselit.atomic import write_atomic
        try:
            write_atomic({str(target)!r}, "x" * 100_000)
        except OSError as err:
            print(err)
        """,
        tmp_path,
    )
    assert result.stdout.startswith(f"{target}: could not write the file (File too large)"), result.stderr
    assert target.read_text() == "old and complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["doc.json"]


def test_a_write_whose_file_cannot_be_created_names_the_file(tmp_path):
    """The temporary file cannot be created (here: the "folder" is a file, which fails for
    root too, unlike a read-only folder): an OSError naming the target, nothing left."""
    folder = tmp_path / "locked"
    folder.write_text("a file, not a folder")
    with pytest.raises(OSError, match=r"locked/out\.json: could not write the file \(Not a directory\)"):
        write_atomic(folder / "out.json", "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked"] and folder.read_text() == "a file, not a folder"


def test_predict_leaves_no_half_written_outputs(tmp_path):
    """``poselit predict`` stopped by a full disk: exit 2, one line naming the file, the
    earlier complete outputs untouched, no temporary files."""
    image = tmp_path / "person.png"
    cv2.imwrite(str(image), np.random.default_rng(0).integers(0, 255, (96, 80, 3), np.uint8))
    out = tmp_path / "out"
    out.mkdir()
    (out / "person.png").write_bytes(b"earlier output")
    command = f"""
        import sys
        from poselit.cli import main
        sys.exit(main(["predict", {str(image)!r}, "--model", "luvizon-tiny-lsp-demo", "--device", "cpu",
                       "--quiet", "--out", {str(out)!r}]))
        """
    result = run_limited(4096, command, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"poselit: error: {out / 'person.png'}: could not write")
    assert sorted(p.name for p in out.iterdir()) == ["person.png"]
    assert (out / "person.png").read_bytes() == b"earlier output"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A Lightning checkpoint of a one-block Luvizon at 64x64, as the trainer saves it."""
    import pytorch_lightning as pl

    from poselit.models import LuvizonSoftArgmax

    folder = tmp_path_factory.mktemp("checkpoint")
    trainer = pl.Trainer(max_steps=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=folder)
    trainer.strategy.connect(LuvizonSoftArgmax(num_blocks=1, width=32, input_size=(64, 64)))
    trainer.save_checkpoint(folder / "model.ckpt")
    return folder / "model.ckpt"


def test_zoo_export_stopped_by_a_full_disk_names_the_file_and_leaves_nothing(checkpoint, tmp_path):
    """Exit 2 with one line naming the weights file; no card is written for weights that
    were not, and no temporary file is left in the export folder."""
    zoo_dir, out = tmp_path / "zoo", tmp_path / "export"
    command = f"""
        import os, sys
        os.environ["POSELIT_ZOO"] = {str(zoo_dir)!r}
        from poselit.cli import main
        sys.exit(main(["zoo", "export", {str(checkpoint)!r}, "--name", "luvizon-tiny-full", "--out", {str(out)!r}]))
        """
    result = run_limited(16_384, command, tmp_path)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"poselit: error: {out / 'model.safetensors'}: could not write the file (File too large)"
    assert list(out.iterdir()) == [] and not zoo_dir.exists()


def test_zoo_export_into_a_folder_that_cannot_be_created_ends_in_one_line(checkpoint, tmp_path, capsys):
    """A file where the export folder should be (this fails for root too, unlike a
    read-only folder): exit 2, one line naming the folder."""
    from poselit.cli import main

    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    out = blocker / "export"
    assert main(["zoo", "export", str(checkpoint), "--name", "luvizon-tiny-full", "--out", str(out), "--no-card"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"poselit: error: {out}: could not create the folder (Not a directory)"
    )
    assert blocker.read_text() == "a file"


def test_temporaries_of_killed_writers_are_found_and_removed_and_live_ones_kept(tmp_path):
    """A writer killed mid-write (here: a child process, ``SIGKILL``ed while its temporary
    exists) leaves ``.NAME.PID-TOKEN.tmp``; :func:`remove_abandoned_temporaries` removes it,
    and keeps a running writer's temporary and every other file."""
    import signal

    from poselit.atomic import TEMPORARY_NAME, remove_abandoned_temporaries

    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, pathlib, secrets, time
        from poselit import atomic
        real_open = os.open
        def open_and_stop(path, *args):  # stop between creating the temporary and filling it
            descriptor = real_open(path, *args)
            print(path, flush=True)
            time.sleep(60)
            return descriptor
        atomic.os.open = open_and_stop
        atomic.write_atomic(pathlib.Path({str(tmp_path)!r}) / "a.json", "{{}}")
    """)], stdout=subprocess.PIPE, text=True)
    abandoned = Path(child.stdout.readline().strip())
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert TEMPORARY_NAME.fullmatch(abandoned.name) and abandoned.exists() and not (tmp_path / "a.json").exists()
    live = tmp_path / f".b.json.{os.getpid()}-0123abcd.tmp"
    live.write_text("being written")
    kept = [tmp_path / "c.json", tmp_path / ".c.json.tmp", tmp_path / "notes.1-0123abcd.tmp"]
    for path in kept:
        path.write_text("mine")
    assert remove_abandoned_temporaries(tmp_path) == [abandoned]
    assert not abandoned.exists() and live.exists() and all(path.exists() for path in kept)
    assert remove_abandoned_temporaries(tmp_path / "missing") == []
