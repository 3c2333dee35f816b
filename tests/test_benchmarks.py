"""The benchmark scripts run (smoke mode) and print what their docs promise."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path = REPO) -> dict:
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={"WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_train_step_benchmark_smoke_measures_both_precisions_and_formats():
    result = _run("benchmarks/train_step.py", "recipes/cpu/luvizon.yaml", "--smoke", "--sizes", "64")
    rows = result["rows"]
    assert {(r["precision"], r["channels_last"]) for r in rows} == {("32", False), ("32", True),
                                                                     ("bf16-mixed", False), ("bf16-mixed", True)}
    for row in rows:
        assert row["method"] == "LuvizonSoftArgmax" and row["input_size"] == 64 and row["batch_size"] == 4
        assert row["model_alone_samples_per_s"] > 0 and row["lightning_samples_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["lightning_samples_per_s"] / row["model_alone_samples_per_s"], rel=0.05)
    assert len(result["speedups"]) == 2 and result["smoke"] and result["cpu_count"] >= 1


def test_plot_training_merges_resumed_logs_and_writes_the_png(tmp_path):
    header = "epoch,step,time/cpu_hours,train/loss,val/pck\n"
    for version, rows in (("version_0", ["0,10,0.5,1.0,", "0,19,0.9,,20.0", "1,38,1.8,,30.0"]),
                          ("version_1", ["1,38,1.9,,31.0", "2,57,2.7,,40.0"])):  # resumed: epoch 1 again
        folder = tmp_path / "luvizon" / "csv" / version
        folder.mkdir(parents=True)
        (folder / "metrics.csv").write_text(header + "\n".join(rows) + "\n")
    out = tmp_path / "curves.png"
    result = _run(str(REPO / "benchmarks/plot_training.py"), f"luvizon={tmp_path / 'luvizon'}", "--out", str(out))
    assert result["curves"]["luvizon"] == [[0.9, 20.0], [1.8, 30.0], [1.9, 31.0], [2.7, 40.0]]
    assert out.read_bytes().startswith(b"\x89PNG")

    (tmp_path / "empty").mkdir()
    done = subprocess.run([sys.executable, str(REPO / "benchmarks/plot_training.py"), str(tmp_path / "empty"),
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 1 and "no metrics.csv under it" in done.stderr
