"""Long runs that stop anywhere: every file whole at any moment, ``--skip-existing`` resumes
without redoing or corrupting what is there, and a real ``SIGKILL`` soak (benchmarks/soak.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from poselit.cli import main
from poselit.cli.predict import pending_images
from poselit.predict import Predictor
from poselit.predict_results import JsonLines, whole_lines
from tiny_models import TinyHeatmapModel

REPO = Path(__file__).resolve().parents[1]


def test_json_lines_grow_by_whole_lines_and_a_torn_last_line_is_cut_on_append(tmp_path):
    path = tmp_path / "predictions.jsonl"
    with JsonLines(path) as lines:
        lines.write({"image": "a.jpg"})
        lines.write({"image": "b.jpg"})
    assert path.read_text() == '{"image": "a.jpg"}\n{"image": "b.jpg"}\n'
    with path.open("a") as file:
        file.write('{"image": "c.j')  # what a crash mid-write would leave
    assert list(whole_lines(path)) == [{"image": "a.jpg"}, {"image": "b.jpg"}]
    with JsonLines(path, append=True) as lines:
        lines.write({"image": "c.jpg"})
    assert [d["image"] for d in whole_lines(path)] == ["a.jpg", "b.jpg", "c.jpg"]
    assert path.read_text().count("\n") == 3
    with JsonLines(path) as lines:  # not appending: started afresh
        lines.write({"image": "d.jpg"})
    assert list(whole_lines(path)) == [{"image": "d.jpg"}]
    assert list(whole_lines(tmp_path / "missing.jsonl")) == []


def test_a_damaged_line_in_the_middle_is_named(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text('{"image": "a.jpg"}\nnot json\n{"image": "b.jpg"}\n')
    with pytest.raises(ValueError, match=rf"{path}:2: not a JSON document .*remove or repair the line"):
        list(whole_lines(path))


def test_the_torn_tail_is_found_across_read_blocks(tmp_path):
    from poselit.predict_results import whole_size

    path = tmp_path / "lines.jsonl"
    path.write_bytes(b"x" * 100 + b"\n" + b"y" * 250)
    assert whole_size(path, block=16) == whole_size(path) == 101
    path.write_bytes(b"z" * 40)
    assert whole_size(path, block=16) == 0


@pytest.fixture
def photos(tmp_path) -> list[Path]:
    """Five small images on disk."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(5):
        cv2.imwrite(str(folder / f"p{index}.jpg"), rng.integers(0, 256, (48, 40, 3), dtype=np.uint8))
    return sorted(folder.iterdir())


@pytest.fixture
def tiny_cli(monkeypatch) -> None:
    """``poselit predict`` runs a tiny untrained model whatever ``--model`` names."""
    torch.manual_seed(0)
    predictor = Predictor(TinyHeatmapModel(skeleton="lsp", input_size=(64, 64)), batch_size=2)
    monkeypatch.setattr(Predictor, "from_zoo", classmethod(lambda cls, name, **options: predictor))


def predict(*argv: str) -> int:
    return main(["predict", *argv, "--model", "tiny", "--device", "cpu", "--quiet"])


def stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


def test_skip_existing_finishes_an_interrupted_run_without_redoing_it(tmp_path, photos, tiny_cli, capsys):
    out = tmp_path / "out"
    assert predict(*map(str, photos), "--out", str(out)) == 0
    whole = {p.name: p.read_bytes() for p in out.iterdir()}
    # as a run killed after p1 and during p3 leaves it: p3's picture without its document
    for name in ("p2.json", "p2.png", "p3.json", "p4.json", "p4.png"):
        (out / name).unlink()
    (out / ".p3.json.999999999-0123abcd.tmp").write_text('{"ima')  # p3's document, its writer killed (no such process)
    assert pending_images(photos, out) == photos[2:]
    before = stamps(out)
    capsys.readouterr()
    assert predict(str(photos[0].parent), "--out", str(out), "--skip-existing") == 0
    after = stamps(out)
    assert {name: after[name] for name in ("p0.json", "p0.png", "p1.json", "p1.png")} == {
        name: before[name] for name in ("p0.json", "p0.png", "p1.json", "p1.png")}  # not written again
    assert {p.name: p.read_bytes() for p in out.iterdir()} == whole  # the same files as one straight run, no temporary


def test_skip_existing_reports_what_it_skipped(tmp_path, photos, tiny_cli, capsys):
    out = tmp_path / "out"
    assert predict(*map(str, photos[:2]), "--out", str(out)) == 0
    capsys.readouterr()
    assert predict(*map(str, photos), "--out", str(out), "--skip-existing") == 0
    text = capsys.readouterr().out
    assert text.startswith("3 images (") and f"): wrote 6 files to {out}, skipped 2 already there (--skip-existing)" in text


def test_skip_existing_with_jsonl_appends_one_line_per_missing_image(tmp_path, photos, tiny_cli):
    out = tmp_path / "out"
    assert predict(*map(str, photos), "--out", str(out), "--jsonl") == 0
    whole = (out / "predictions.jsonl").read_text()
    lines = whole.splitlines(keepends=True)
    # killed while writing p3's line: p0-p2 whole, p3's line torn, p3's picture written, p4 not started
    (out / "predictions.jsonl").write_text("".join(lines[:3]) + lines[3][:25])
    (out / "p4.png").unlink()
    assert pending_images(photos, out, jsonl=True) == photos[3:]
    assert predict(*map(str, photos), "--out", str(out), "--jsonl", "--skip-existing") == 0
    assert (out / "predictions.jsonl").read_text() == whole  # torn line cut, the rest appended once
    assert predict(*map(str, photos), "--out", str(out), "--jsonl", "--skip-existing") == 0
    assert (out / "predictions.jsonl").read_text() == whole  # nothing left to do: nothing appended
    assert predict(*map(str, photos[:1]), "--out", str(out), "--jsonl") == 0
    assert (out / "predictions.jsonl").read_text() == lines[0]  # without --skip-existing: afresh


@pytest.mark.slow
def test_soak_killed_runs_leave_whole_outputs_and_resume_to_the_straight_runs_result(tmp_path):
    """benchmarks/soak.py for real, small: ``poselit predict`` on 40 images and a 20-frame video,
    SIGKILLed once while it writes the images and once in the video, then finished."""
    done = subprocess.run(
        [sys.executable, "benchmarks/soak.py", "--images", "40", "--frames", "20", "--kills", "2",
         "--work", str(tmp_path / "work"), "--out", str(tmp_path / "soak.json")],
        cwd=REPO, capture_output=True, text=True, timeout=3600,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == json.loads((tmp_path / "soak.json").read_text())
    assert (result["images"], result["frames"], result["kills"], result["kills_survived"]) == (40, 20, 2, 2)
    assert result["outputs_intact"] and not result["files_redone"] and not result["documents_differing_from_reference"]
    assert [fault["phase"] for fault in result["faults"]] == ["images", "video"]
    image_fault, video_fault = result["faults"]
    assert 1 <= image_fault["documents"] < 40 and not image_fault["checked"]["problems"]
    assert video_fault["documents"] == 40 and not video_fault["checked"]["video"]  # killed mid-video: no video yet
    assert any(name.startswith(".clip.") for name in video_fault["temporaries"]) and not result["temporaries_left"]
    assert 0 < result["rss_start_mb"] <= result["rss_peak_mb"] and result["rss_end_mb"] > 0
