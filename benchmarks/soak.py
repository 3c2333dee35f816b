"""Soak and fault test of long ``poselit predict`` runs: killed at random points, then resumed.

    nice -n 15 python benchmarks/soak.py [--images 300] [--frames 300] [--kills 6]
        [--model luvizon-tiny-lsp-demo] [--size 240 320] [--seed 0] [--out FILE]

Linux only (``SIGKILL``, ``/proc``). One command, ``poselit predict IMAGES/ clip.mp4
--skip-existing``, run as users run it, over generated inputs: ``--images`` stick-figure
JPEGs and a video of ``--frames`` frames of a swaying figure (``mp4v``), ``--size`` =
height width in px.

1. **Reference**: the command straight through into ``ref/``; its resident memory (RSS,
   ``/proc/PID/status``) is sampled every 0.05 s: ``start`` when its first output appears
   (model loaded, first batch done), ``video_start`` when the video's first frame is
   written (the images done), ``end`` the last sample before it exits, and the ``peak``.
2. **Faults**: the command into ``out/``, killed (``SIGKILL``) ``--kills`` times at random
   points, each run resuming the last: the first half of the kills once a random number of
   further image documents is written, the rest once the video's temporary JSON lines hold
   a random number of frames (at most two thirds); each kill a random 0-50 ms after its mark, to land anywhere
   in a write. After every kill every output in ``out/`` is checked: each JSON parses and
   names its image, each picture decodes, and a video or video JSON lines file, if there
   is one yet, is whole (all frames, whole lines).
3. **Finish**: the command once more completes the rest. Checked: it exits 0; every image
   document equals the reference run's (nothing corrupted), and no file written before it
   was written again (same inode and modification time: nothing redone); the video decodes
   to every frame and its JSON lines equal the reference's; no temporary is left, of an
   image's files (:func:`poselit.atomic.remove_abandoned_temporaries`) or of the video (a
   killed video restarts from its first frame: :mod:`poselit.video`).

Prints one JSON line (``--out FILE`` also writes it): images, frames, kills survived,
outputs intact, RSS start/end/peak in MB, seconds, and the details.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from poselit.data.synthetic import random_pose, render_figure
from poselit.skeletons import LSP

POLL_S = 0.05
"""How often a run's outputs and memory are looked at."""


def make_inputs(folder: Path, images: int, frames: int, size: tuple[int, int], seed: int) -> tuple[Path, Path]:
    """``folder/images/`` with ``images`` stick-figure JPEGs and ``folder/clip.mp4`` of ``frames``
    frames of one figure swaying left and right, all ``size = (height, width)``."""
    rng = np.random.default_rng(seed)
    height, width = size
    (folder / "images").mkdir(parents=True)
    visible = np.zeros(LSP.num_joints, bool)
    for index in range(images):
        image = render_figure(random_pose(rng, height, width), visible, rng, height, width)
        cv2.imwrite(str(folder / "images" / f"im{index:04d}.jpg"), image)
    pose = random_pose(rng, height, width)
    video = folder / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (width, height))
    for t in range(frames):
        sway = np.array([width / 8 * np.sin(2 * np.pi * t / 75), 0])
        writer.write(render_figure(pose + sway, visible, np.random.default_rng(seed), height, width))
    writer.release()
    return folder / "images", video


def rss_mb(pid: int) -> float | None:
    """A process's resident memory in MB (``None`` once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def predict_command(images: Path, video: Path, out: Path, model: str) -> list[str]:
    return [sys.executable, "-m", "poselit.cli", "predict", str(images), str(video), "--model", model,
            "--out", str(out), "--device", "cpu", "--skip-existing", "--quiet"]


def run(command: list[str], rng: random.Random, *, kill_when: Callable[[], bool] | None = None,
        marks: dict[str, Callable[[], bool]] | None = None, timeout_s: float = 7200) -> dict:
    """Run ``command``; SIGKILL it (after a random 0-50 ms) once ``kill_when()`` holds. Returns
    its exit code, whether it was killed, its output, and its RSS in MB: when each of
    ``marks`` first held, at the ``end`` (last sample) and the ``peak``."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore"})
    rss: dict[str, float] = {}
    deadline = time.monotonic() + timeout_s
    killed = False
    while process.poll() is None:
        if time.monotonic() > deadline:
            process.kill()
            raise TimeoutError(f"{' '.join(command)}: still running after {timeout_s} s")
        sample = rss_mb(process.pid)
        if sample is not None:
            rss.update({"end": sample, "peak": max(rss.get("peak", 0.0), sample)})
            rss.update({name: sample for name, mark in (marks or {}).items() if name not in rss and mark()})
        if kill_when is not None and kill_when():
            time.sleep(rng.uniform(0, 0.05))
            process.send_signal(signal.SIGKILL)
            killed = True
            break
        time.sleep(POLL_S)
    stdout, stderr = process.communicate()
    if not killed and process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stderr[-3000:]}")
    return {"returncode": process.returncode, "killed": killed, "rss_mb": rss, "stdout": stdout.strip()}


def documents(out: Path) -> int:
    return sum(1 for entry in os.scandir(out) if entry.name.endswith(".json")) if out.is_dir() else 0


def temporary_lines(out: Path, stem: str, stale: frozenset[Path] = frozenset()) -> int:
    """Whole lines in the video's temporary JSON lines (0 when there is none), leaving out the
    ``stale`` ones (left by an earlier killed run, until the next one removes them)."""
    found = set(out.glob(f".{stem}.*.tmp.jsonl")) - stale if out.is_dir() else set()
    return max((path.read_bytes().count(b"\n") for path in found if path.exists()), default=0)


def count_frames(path: Path) -> int:
    capture, count = cv2.VideoCapture(str(path)), 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def check_outputs(out: Path, images: list[Path], stem: str, frames: int) -> dict:
    """Every output in ``out`` complete and valid (see the module docs): how many of each
    kind, and the ``problems`` found (none: intact)."""
    names, problems = {path.stem: path.name for path in images}, []
    checked: dict = {"documents": 0, "pictures": 0, "video": False, "video_lines": False}
    for path in sorted(out.glob("*.json")):
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            assert Path(document["image"]).name == names[path.stem] and document["people"]
            checked["documents"] += 1
        except (ValueError, KeyError, AssertionError) as err:
            problems.append(f"{path.name}: not a whole document of its image ({err!r})")
    for path in sorted(out.glob("*.png")):
        if cv2.imread(str(path)) is None:
            problems.append(f"{path.name}: does not decode")
        checked["pictures"] += 1
    lines_file = out / f"{stem}.jsonl"
    if lines_file.exists():  # renamed into place after the video: either may be there alone
        lines = lines_file.read_bytes()
        try:
            assert [json.loads(line)["frame"] for line in lines.splitlines()] == list(range(frames))
            assert lines.endswith(b"\n")
            checked["video_lines"] = True
        except (ValueError, KeyError, AssertionError) as err:
            problems.append(f"{lines_file.name}: not one whole line per frame ({err!r})")
    for path in (p for p in out.glob(f"{stem}.*") if p.suffix in (".mp4", ".webm")):
        decoded = count_frames(path)
        checked["video"] = decoded == frames
        if decoded != frames:
            problems.append(f"{path.name}: {decoded} of {frames} frames decode")
    return {**checked, "problems": problems}


def snapshot(out: Path) -> dict[str, tuple[int, int]]:
    """Inode and modification time of every finished output."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.iterdir() if not p.name.startswith(".")}


def soak(work: Path, *, images: int, frames: int, kills: int, model: str, size: tuple[int, int], seed: int) -> dict:
    began = time.monotonic()
    rng = random.Random(seed)
    image_folder, video = make_inputs(work, images, frames, size, seed)
    inputs = sorted(image_folder.iterdir())
    ref, out = work / "ref", work / "out"
    marks = {"start": lambda: documents(ref) > 0, "video_start": lambda: temporary_lines(ref, video.stem) > 0}
    reference = run(predict_command(image_folder, video, ref, model), rng, marks=marks)
    faults = []
    for index in range(kills):
        done, stale = documents(out), frozenset(out.glob(f".{video.stem}.*.tmp.jsonl"))
        if index < kills // 2:
            target = done + rng.randint(1, max(1, (images - done) // (kills // 2 - index + 1)))
            mark = {"phase": "images", "documents_at_least": target}
            kill_when = lambda target=target: documents(out) >= target  # noqa: E731
        else:
            target = rng.randint(1, max(1, frames * 2 // 3))  # frames left after the mark: the kill lands first
            mark = {"phase": "video", "frames_at_least": target}
            kill_when = lambda target=target, stale=stale: temporary_lines(out, video.stem, stale) >= target  # noqa: E731
        result = run(predict_command(image_folder, video, out, model), rng, kill_when=kill_when)
        temporaries = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
        faults.append({**mark, "killed": result["killed"], "documents_before": done, "documents": documents(out),
                       "video_lines_at_kill": temporary_lines(out, video.stem, stale),
                       "checked": check_outputs(out, inputs, video.stem, frames), "temporaries": temporaries})
    before = snapshot(out)
    final = run(predict_command(image_folder, video, out, model), rng)
    checked = check_outputs(out, inputs, video.stem, frames)
    after = snapshot(out)
    redone = sorted(name for name, stamp in before.items() if after.get(name) != stamp and not name.startswith(video.stem))
    differing = [p.name for p in sorted(ref.glob("*.json")) if json.loads(p.read_text()) != json.loads((out / p.name).read_text())]
    reference_lines = [json.loads(line) for line in (ref / f"{video.stem}.jsonl").read_text().splitlines()]
    video_lines = [json.loads(line) for line in (out / f"{video.stem}.jsonl").read_text().splitlines()]
    left = sorted(p.name for p in out.iterdir() if p.name.startswith("."))
    survived = sum(fault["killed"] and not fault["checked"]["problems"] for fault in faults)
    intact = (survived == kills and not checked["problems"] and checked["documents"] == checked["pictures"] == images
              and checked["video"] and checked["video_lines"] and not differing and not redone
              and reference_lines == video_lines and not left)
    return {
        "images": images,
        "frames": frames,
        "kills": kills,
        "kills_survived": survived,
        "outputs_intact": intact,
        **{f"rss_{name}_mb": round(mb, 1) for name, mb in reference["rss_mb"].items()},
        "seconds": round(time.monotonic() - began, 1),
        "model": model,
        "size": list(size),
        "reference_run": reference["stdout"].splitlines(),
        "faults": faults,
        "final_run": final["stdout"].splitlines(),
        "final_checked": checked,
        "documents_differing_from_reference": differing,
        "files_redone": redone,
        "video_lines_equal_reference": reference_lines == video_lines,
        "temporaries_left": left,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--kills", type=int, default=6, help="half while images are written, half during the video")
    parser.add_argument("--model", default="luvizon-tiny-lsp-demo")
    parser.add_argument("--size", type=int, nargs=2, default=(240, 320), metavar=("HEIGHT", "WIDTH"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the inputs and outputs here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="also write the result here")
    args = parser.parse_args(argv)
    if args.kills < 2 or args.images < 2 * args.kills or args.frames < 2:
        parser.error("need --kills >= 2, --images >= 2 x --kills and --frames >= 2")
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        result = soak(work, images=args.images, frames=args.frames, kills=args.kills, model=args.model,
                      size=tuple(args.size), seed=args.seed)
    text = json.dumps(result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(text)
    return 0 if result["outputs_intact"] else 1


if __name__ == "__main__":
    sys.exit(main())
