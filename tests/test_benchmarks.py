"""The benchmark scripts run (smoke mode) and print what their docs promise."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from poselit.zoo import read_card

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path = REPO) -> dict:
    done = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={"WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # about a minute on 2 cores: CI runs it, the quick run leaves it out
def test_train_step_benchmark_smoke_measures_both_precisions_and_formats():
    result = _run("benchmarks/train_step.py", "recipes/cpu/luvizon.yaml", "--smoke", "--sizes", "64")
    rows = result["rows"]
    assert {(r["precision"], r["channels_last"]) for r in rows} == {("32", False), ("32", True),
                                                                     ("bf16-mixed", False), ("bf16-mixed", True)}
    for row in rows:
        assert row["method"] == "LuvizonSoftArgmax" and row["input_size"] == 64 and row["batch_size"] == 4
        assert row["model_alone_samples_per_s"] > 0 and row["lightning_samples_per_s"] > 0
        assert row["ratio"] == pytest.approx(row["lightning_samples_per_s"] / row["model_alone_samples_per_s"], rel=0.05)
        # the setting each row reports is the one that ran, in both loops
        dtype = "bfloat16" if row["precision"] == "bf16-mixed" else "float32"
        for loop in ("model_alone", "lightning"):
            assert row["observed"][loop]["dtype"] == dtype, (row["precision"], loop)
            assert row["observed"][loop]["channels_last"] == row["channels_last"], (row["channels_last"], loop)
        assert row["observed"]["lightning"]["trainer_precision"] == {"32": "32-true"}.get(row["precision"], row["precision"])
    assert len(result["speedups"]) == 2 and result["smoke"] and result["cpu_count"] >= 1
    assert len(result["load_average"]) == 3 and all(load >= 0 for load in result["load_average"])


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


def test_plot_training_continues_a_stored_curve_with_a_run_started_from_its_end(tmp_path):
    folder = tmp_path / "anneal" / "csv" / "version_0"  # a new run (init_from): its clock starts at 0
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text("epoch,step,time/cpu_hours,val/pck\n0,9,0.3,45.0\n1,19,0.6,50.0\n")
    stored = tmp_path / "curves.json"
    stored.write_text(json.dumps({"curves": {"bulat": [[1.0, 30.0], [2.0, 40.0]], "luvizon": [[0.5, 20.0]]}}))
    out, written = tmp_path / "curves.png", tmp_path / "new.json"
    script = str(REPO / "benchmarks/plot_training.py")
    result = _run(script, "--stored", str(stored), f"bulat+={tmp_path / 'anneal'}", "--out", str(out), "--json", str(written),
                  "--level", "shipped bulat=71.05")
    assert result["curves"] == {"bulat": [[1.0, 30.0], [2.0, 40.0], [2.3, 45.0], [2.6, 50.0]], "luvizon": [[0.5, 20.0]]}
    assert json.loads(written.read_text())["curves"] == result["curves"] and out.read_bytes().startswith(b"\x89PNG")
    done = subprocess.run([sys.executable, script, "--stored", str(stored), f"belagiannis+={tmp_path / 'anneal'}",
                           "--out", str(out)], capture_output=True, text=True)
    assert done.returncode == 1 and "no curve 'belagiannis' to continue (known: bulat, luvizon)" in done.stderr
    done = subprocess.run([sys.executable, script, "--stored", str(stored), "--level", "shipped", "--out", str(out)],
                          capture_output=True, text=True)
    assert done.returncode == 1 and "--level takes LABEL=PCK, got ['shipped']" in done.stderr


def test_precision_check_trains_fp32_and_bf16_from_the_same_start_per_seed():
    result = _run("benchmarks/precision_check.py", "recipes/cpu/luvizon.yaml", "--smoke", "--size", "64",
                  "--seeds", "0", "1")
    runs = result["runs"]
    assert [(run["seed"], run["precision"]) for run in runs] == [(0, "32"), (0, "bf16-mixed"), (1, "32"), (1, "bf16-mixed")]
    for run in runs:
        assert set(run["validation"]) == set(run["validation_fp32"]) >= {"val/pck", "val/loss"} and run["seconds"] > 0
        bf16 = run["precision"] == "bf16-mixed"  # the precision and format each run reports really ran
        assert run["observed"] == {"trainer_precision": "bf16-mixed" if bf16 else "32-true", "dtype": "bfloat16" if bf16 else "float32",
                                   "channels_last": True}
    fp32 = [run["validation"]["val/pck"] for run in runs if run["precision"] == "32"]
    assert result["mean_val_pck"]["32"] == pytest.approx(sum(fp32) / 2, abs=1e-2)
    assert result["fp32_seed_spread"] == pytest.approx(max(fp32) - min(fp32), abs=1e-2)
    assert runs[0]["validation_fp32"]["val/pck"] == pytest.approx(runs[0]["validation"]["val/pck"], abs=1e-2)


@pytest.mark.slow  # about a minute on 2 cores: CI runs it, the quick run leaves it out
def test_latency_benchmark_splits_end_to_end_time_into_stages():
    result = _run("benchmarks/latency.py", "luvizon-tiny-lsp-demo", "--smoke", "--variants", "fp32", "bf16-cl",
                  "--threads", "1", "--flip", "both")
    rows = result["rows"]
    assert {(r["variant"], r["flip_test"]) for r in rows} == {(v, f) for v in ("fp32", "bf16-cl") for f in (False, True)}
    for row in rows:
        ms = row["ms"]
        assert row["threads"] == 1 and row["input_size"] == [128, 128] and row["images_per_s_batch32"] > 0
        assert all(ms[stage] >= 0 for stage in ("decode", "crop", "network", "flip", "other")) and ms["end_to_end"] > 0
        assert row["flip_test"] or ms["flip"] == 0  # no flip test, no flip time
        assert ms["pre_post_fraction"] == pytest.approx(1 - (ms["network"] + ms["flip"]) / ms["end_to_end"], abs=2e-3)
    assert result["images"] == 3 and result["smoke"]


@pytest.mark.slow  # about a minute on 2 cores: CI runs it, the quick run leaves it out
def test_latency_table_of_a_result_has_a_row_per_model_and_variant(tmp_path):
    result = _run("benchmarks/latency.py", "luvizon-tiny-lsp-demo", "--smoke", "--variants", "fp32", "onnx",
                  "--threads", "1", "--flip", "both")
    (tmp_path / "latency.json").write_text(json.dumps(result))
    done = subprocess.run([sys.executable, "benchmarks/latency.py", "--table", str(tmp_path / "latency.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and lines[0].startswith("| model | variant | 1 thread, flip off | 1 thread, flip on |")
    assert [line.split(" | ")[1] for line in lines[2:]] == ["fp32", "onnx"]
    (onnx,) = [r for r in result["rows"] if r["variant"] == "onnx" and r["flip_test"]]
    assert f"| {onnx['ms']['end_to_end']:.1f} |" in lines[3]


@pytest.mark.slow  # about a minute on 2 cores: CI runs it, the quick run leaves it out
def test_latency_benchmark_writes_the_default_settings_figure_into_the_card(tmp_path):
    for path in (REPO / "zoo").glob("luvizon-tiny-lsp-demo.*"):
        shutil.copy(path, tmp_path)
    before = read_card(tmp_path / "luvizon-tiny-lsp-demo.yaml")
    result = _run("benchmarks/latency.py", "luvizon-tiny-lsp-demo", "--smoke", "--variants", "bf16-cl", "onnx",
                  "--threads", "1", "2", "--flip", "on", "--cards", str(tmp_path))
    card = read_card(tmp_path / "luvizon-tiny-lsp-demo.yaml")
    (default,) = [r for r in result["rows"] if r["variant"] == "onnx" and r["threads"] == 2]
    assert result["cards_written"] == ["luvizon-tiny-lsp-demo"] and card.complexity["cpu_ms"] == default["ms"]["end_to_end"]
    assert "2 thread(s)" in card.complexity["cpu_ms_measured"] and "ONNX Runtime" in card.complexity["cpu_ms_measured"]
    assert {k: v for k, v in card.complexity.items() if not k.startswith("cpu_ms")} == before.complexity
    assert card.weights == before.weights and card.metrics == before.metrics  # the rest of the card kept


def test_whole_image_benchmark_scores_the_box_one_pass_and_two_passes(tmp_path):
    out = tmp_path / "whole_image.json"
    result = _run("benchmarks/whole_image.py", "--smoke", "--canvas", "1", "2", "--out", str(out))
    assert json.loads(out.read_text()) == result and result["people"] == 4 and result["smoke"]
    rows = result["rows"]
    assert [(row["canvas"], row["setting"]) for row in rows] == [
        (canvas, setting) for canvas in (1.0, 2.0) for setting in ("box", "whole", "whole_refined")
    ]
    for row in rows:
        assert 0 <= row["PCK@0.2"] <= 100 and 0 <= row["PCK@0.2 AUC"] <= 100 and row["seconds"] > 0
        # each setting cropped as it says: the annotated box, the whole image, or a second pass
        if row["setting"] == "box":
            assert row["crops"] == {"annotated": 4}
        elif row["setting"] == "whole":
            assert row["crops"] == {"whole": 4}
        else:
            assert row["crops"].get("other", 0) >= 1 and "annotated" not in row["crops"]


def test_whole_image_benchmark_writes_the_whole_image_result_into_the_card(tmp_path):
    """``--cards`` adds a ``crop: whole image`` entry with every column of the protocol and
    keeps the box entry (a later measurement of the same split and crop replaces it:
    ``poselit.zoo.cards.with_metrics``; each smoke run generates its split anew)."""
    for path in (REPO / "zoo").glob("bulat-mobilenetv2-lsp.*"):
        shutil.copy(path, tmp_path)
    before = read_card(tmp_path / "bulat-mobilenetv2-lsp.yaml")
    result = _run("benchmarks/whole_image.py", "--smoke", "--settings", "whole", "--cards", str(tmp_path))
    card = read_card(tmp_path / "bulat-mobilenetv2-lsp.yaml")
    assert result["cards_written"] == ["bulat-mobilenetv2-lsp"]
    assert card.metrics[: len(before.metrics)] == before.metrics and len(card.metrics) == len(before.metrics) + 1
    whole = card.metrics[-1]
    assert whole["crop"] == "whole image" and whole["records"] == 4 and "whole_image.py" in whole["measured_with"]
    assert whole["dataset"].startswith("lsp:test@")  # the generated split, by its path
    assert whole["results"]["PCK@0.2"]["Total"] == result["rows"][0]["PCK@0.2"]
    assert {"Head", "Wrist", "Ankle", "AUC"} <= set(whole["results"]["PCK@0.2"]) and "PCP@0.5" in whole["results"]
    assert card.weights == before.weights and card.complexity == before.complexity


def test_whole_image_cards_need_the_whole_setting():
    done = subprocess.run([sys.executable, "benchmarks/whole_image.py", "--smoke", "--settings", "box", "--cards"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "--cards writes the 'whole' setting on canvas 1" in done.stderr


def test_sample_predictions_draw_the_annotation_and_each_model_per_person(tmp_path):
    out = tmp_path / "samples.png"
    result = _run("benchmarks/sample_predictions.py", "--smoke", "--size", "64", "--out", str(out))
    image = cv2.imread(str(out))
    assert result["out"] == str(out) and result["models"] == ["luvizon-tiny-lsp-demo"]
    assert image.shape[:2] == (2 * 64 + 2, 2 * 64 + 2)  # 2 people x (annotation, model), 2 px gaps
    assert [set(row) for row in result["people"]] == [{"image", "luvizon-tiny-lsp-demo"}] * 2
    assert all(0 <= row["luvizon-tiny-lsp-demo"] <= 100 for row in result["people"])


def test_readme_latency_table_is_the_committed_measurement():
    """The README's side-by-side speed table is ``latency.py --ratios`` of the committed run."""
    result = "benchmarks/results/latency_tflite_cpu.json"
    done = subprocess.run([sys.executable, "benchmarks/latency.py", "--ratios", result],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout in (REPO / "README.md").read_text(), (
        f"README.md's speed table is stale: paste python benchmarks/latency.py --ratios {result}"
    )


def test_decoding_benchmark_validates_once_per_refinement(tmp_path):
    out = tmp_path / "decoding.json"
    result = _run("benchmarks/decoding.py", "x=recipes/cpu/belagiannis.yaml", "--smoke", "--out", str(out))
    assert json.loads(out.read_text()) == result and result["smoke"]
    (model,) = result["models"]
    assert model["codec"]["stride"] == 8 and model["codec"]["refine"] == "quarter_offset"  # the recipe's own
    assert [row["refine"] for row in model["rows"]] == ["quarter_offset", "taylor", "dark", None]
    for row in model["rows"]:
        assert 0 <= row["val/pck"] <= 100 and row["seconds"] > 0


@pytest.mark.slow  # two virtual environments with pip: ~20 s
def test_install_benchmark_measures_a_fresh_environment(tmp_path):
    """``benchmarks/install.py``'s measurement on a stand-in install (an empty wheel-free step):
    a new environment, its size and largest folders, the check run in it, then removed."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import install
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    env = tmp_path / "env"
    result = install.measure([["-c", "import sys"]], env, check="print(14)")
    assert result["predicts"] and result["commands"] == ["python -c import sys"]
    assert result["environment_gb"] > 0 and "pip" in result["largest_mb"]  # venv's own pip, measured
    assert not env.exists()
    failed = install.measure([["-c", "import sys"]], env, check="import poselit_nowhere")
    assert not failed["predicts"] and "poselit_nowhere" in failed["error"][0]
