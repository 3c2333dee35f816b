"""End-to-end CPU latency of pose models beside MoveNet's, and where the time goes.

For each model (a zoo name, or a recipe YAML: latency does not depend on the weights, so
an untrained model built from a recipe measures the same), each thread count and each
variant, it measures on real images (the first ``--images`` LSP test images, whole image,
no box, as MoveNet is measured):

* ``end_to_end``: median of ``Predictor(model)(path)`` at batch 1 (decode the file,
  crop, network, flip test, decoding, mapping back to the image), after warm-up, and its
  90th percentile ``end_to_end_p90``;
* the same split into stages, each a median over the same images: ``decode`` (read the
  file), ``crop`` (box + affine warp), ``network`` (forward on one crop, including the
  heatmap decoding of heatmap methods: ``decoding`` reports that part), ``flip`` (the extra
  cost of the flip test) and ``other`` (the rest: mapping back, Python);
* ``pre_post_fraction``: (end to end - network - flip) / end to end;
* ``images_per_s_batch32``: throughput of ``Predictor(model, batch_size=32)`` on 32 files.

Variants: ``fp32`` (eager float32), ``fp32-cl`` (channels-last), ``bf16`` (bfloat16
autocast), ``bf16-cl``, ``compile`` (``torch.compile``, float32): torch, whatever
``Predictor``'s default runtime; ``onnx`` (exported to a temporary file, run by ONNX Runtime
with ``--threads`` intra-op threads: ``network`` then includes the heatmap decoding, which
is in the graph); ``tflite`` (the model converted once to TFLite by ``tools/onnx_to_tflite.py``
into ``--tflite-dir``, default :func:`poselit.tflite.converted_folder`, run by LiteRT with its
XNNPACK delegate on ``--threads`` threads, as MoveNet is: :class:`poselit.tflite.TflitePoseModel`,
checked against the model's card; without the file the script stops with a one-line error
saying how to make it). Prints one JSON object.

    POSELIT_DATA=../shared/data python benchmarks/latency.py luvizon-mobilenetv2-lsp \\
        recipes/cpu/bulat.yaml --threads 1 2 --flip both

**MoveNet**, the reference: ``movenet-lightning`` and ``movenet-thunder`` may be named among
the models. They are Google's models as TFLite files (``benchmarks/movenet.py``; made once
by ``tools/movenet_tflite.py`` into ``--movenet-dir``, default ``~/.cache/poselit/movenet``;
without them the script stops with a one-line error saying how to make them) run by LiteRT
with its XNNPACK delegate on ``--threads`` threads: variant ``tflite``, no flip test, no
batch-32 throughput (one image per call). They are timed as poselit's models are:
``end_to_end`` decodes the file, letterboxes the whole image into the square input
(``crop``), runs the network (``network``) and maps the keypoints back (``other``). Every
row then has ``ratio_to``: its end-to-end median over each measured MoveNet's at the same
thread count::

    POSELIT_DATA=../shared/data python benchmarks/latency.py movenet-lightning movenet-thunder \\
        bulat-mobilenetv2-lsp luvizon-mobilenetv2-lsp --variants fp32 onnx --threads 1 2 --images 100

**One loop for all rows**: every row (model, variant, thread count, flip setting) is built
and warmed up first, then timed image by image: for each image, each row in turn times its
stages, so that a machine whose speed drifts (other tenants, clocks) shifts every row and
stage alike instead of some.

**Idle threads that spin**: after a call, a runtime's worker threads spin for a while before
they sleep (OpenMP's in torch, ONNX Runtime's, XNNPACK's pthreadpool), and on a small machine
they would take the core the next row's call needs. So ONNX Runtime's sessions are made with
``session.intra_op.allow_spinning`` off (its threads spin up to about 0.1 s otherwise), and
after each row's calls the loop pauses ``--settle-ms`` (default 20 ms, untimed), longer than
the others spin (OpenMP's default spin takes a few ms, LiteRT's about 1 ms). That the pause
is long enough is measured for every row, not assumed: ``idle_cpu_ms`` is the CPU time the
process burnt (median over the images) during the second half of the pause after the row's
calls, while the timing thread slept: 0 when nothing spins any more by the time the next
row starts. ``--alone`` also times each row's end to end in a loop of its own, after the
shared one, with no other row in between (``end_to_end_alone``): equal to ``end_to_end``
within noise when no row slows another.

``--cards`` writes each measured zoo model's figure into its card (``complexity.cpu_ms``,
with ``complexity.cpu_ms_measured`` saying how and where): end to end at batch 1 with
``Predictor``'s defaults (ONNX Runtime, flip test on), at the most threads measured.

``--table RESULTS.json`` prints a measured result as the Markdown table of the README and
docs/performance.md (end-to-end ms per model and variant, without and with the flip test,
on 1 and 2 threads; the largest pre- plus post-processing share; batch-32 throughput).

``--smoke`` measures 3 repeats on generated images (the test suite uses it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

import poselit
from poselit.data.synthetic import write_synthetic_lsp
from poselit.geometry import crop_affine, warp_image
from poselit.models.base import PoseLitModule
from poselit.onnx import OnnxPoseModel, export_onnx
from poselit.predict import Predictor, load_image, whole_image_box
from poselit.tflite import TflitePoseModel, converted_folder
from poselit.zoo import info, list_models, write_card
from movenet import DEFAULT_DIR, MODELS as MOVENET_MODELS, MoveNet, model_path
from train_step import build, machine_info

VARIANTS = ("fp32", "fp32-cl", "bf16", "bf16-cl", "compile", "onnx", "tflite")


@dataclasses.dataclass
class Row:
    """One timed configuration: its JSON description, the threads set before each of its
    calls, its stages (callables of the image index, ``end_to_end`` first) and its batch-32
    throughput in images/s (``None``: MoveNet, one image per call)."""

    info: dict[str, Any]
    threads: int
    stages: dict[str, Callable[[int], Any]]
    throughput: Callable[[], float] | None


def use_threads(threads: int) -> None:
    """torch's and OpenCV's thread counts (process-wide: set before each row's calls)."""
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


def settle(seconds: float) -> float:
    """Sleep ``seconds``, untimed, for the threads that the last calls left spinning to go to
    sleep; the CPU ms the process burnt in the second half (0: nothing spins any more)."""
    time.sleep(seconds / 2)
    start = time.process_time()
    time.sleep(seconds / 2)
    return 1000 * (time.process_time() - start)


def interleaved_times(rows: list[Row], count: int, settle_s: float) -> tuple[list[dict[str, list[float]]], list[list[float]]]:
    """Wall times, ms, of every row's stages on the items ``i < count``: for each item, each
    row in turn runs its stages in turn (not one row or stage over all items, then the next:
    a machine whose speed drifts shifts every row and stage alike), then :func:`settle`.
    Also each row's idle CPU ms after its calls, per item."""
    times: list[dict[str, list[float]]] = [{name: [] for name in row.stages} for row in rows]
    idle: list[list[float]] = [[] for _ in rows]
    for i in range(count):
        for row, row_times, row_idle in zip(rows, times, idle):
            use_threads(row.threads)
            for name, stage in row.stages.items():
                start = time.perf_counter()
                stage(i)
                row_times[name].append(1000 * (time.perf_counter() - start))
            row_idle.append(settle(settle_s))
    return times, idle


def stage_summary(times: dict[str, list[float]]) -> dict[str, float]:
    """Median ms of each stage, the end to end's 90th percentile, and the derived ``flip``,
    ``other`` and ``pre_post_fraction`` (see the module docs)."""
    result = {name: statistics.median(values) for name, values in times.items()}
    result["end_to_end_p90"] = float(np.percentile(times["end_to_end"], 90))
    result["flip"] = max(0.0, result.pop("network_flip", result["network"]) - result["network"])
    result["other"] = max(0.0, result["end_to_end"] - result["decode"] - result["crop"] - result["network"] - result["flip"])
    result = {name: round(ms, 2) for name, ms in result.items()}
    result["pre_post_fraction"] = round(1 - (result["network"] + result["flip"]) / result["end_to_end"], 3)
    return result


def load_model(name: str) -> PoseLitModule:
    """A zoo model, or an untrained model built from a recipe YAML (its crop padding and
    fill linked from the recipe's data)."""
    if name.endswith((".yaml", ".yml")):
        return build(name, None, ["--model.init_args.backbone_weights=null"])[0]
    return poselit.zoo.load(name)


def prepare(model: PoseLitModule, variant: str) -> tuple[PoseLitModule, bool]:
    """The model as ``variant`` runs it, and whether to autocast to bfloat16."""
    model = model.eval()
    if variant.endswith("-cl"):
        model = model.to(memory_format=torch.channels_last)
    if variant == "compile":
        model.compile()
    return model, variant.startswith("bf16")


def quiet_onnx(path: Path, threads: int) -> OnnxPoseModel:
    """The ONNX file ``path`` in ONNX Runtime with ``threads`` intra-op threads that sleep as
    soon as a call ends (``session.intra_op.allow_spinning`` off: see the module docs);
    checked as :meth:`OnnxPoseModel.from_file` checks it."""
    import onnxruntime as ort

    checked = OnnxPoseModel.from_file(path, threads=threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return OnnxPoseModel(session, checked.metadata, checked.path)


def poselit_stages(predictor: Predictor, paths: list[Path], flip: bool) -> dict[str, Callable[[int], Any]]:
    """The timed stages of one image's prediction by ``predictor`` (see the module docs)."""
    model, size = predictor.model, predictor.model.input_size
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=predictor.autocast_dtype is not None)

    def crop_one(image: np.ndarray) -> np.ndarray:
        center, scale = whole_image_box(image.shape[:2], predictor.padding)
        return warp_image(image, crop_affine(center, scale, size, padding=predictor.padding), size, predictor.fill)

    def network(crop: torch.Tensor, flip_test: bool) -> dict[str, Any]:
        with torch.inference_mode(), autocast:
            return model.predict_poses(crop, flip_test=flip_test)

    images = [load_image(path) for path in paths]
    tensors = [torch.from_numpy(crop_one(image)).permute(2, 0, 1)[None] for image in images]

    timed = {
        "end_to_end": lambda i: predictor(paths[i]),
        "decode": lambda i: load_image(paths[i]),
        "crop": lambda i: crop_one(images[i]),
        "network": lambda i: network(tensors[i], False),
    }
    if flip:
        timed["network_flip"] = lambda i: network(tensors[i], True)
    heatmaps = network(tensors[0], False).get("heatmaps")
    if heatmaps is not None and isinstance(model, PoseLitModule):  # ONNX graphs decode inside
        timed["decoding"] = torch.inference_mode()(lambda i: model.decode_heatmaps(heatmaps.float()))
    return timed


def movenet_stages(model: MoveNet, paths: list[Path]) -> dict[str, Callable[[int], Any]]:
    """The timed stages of one image's prediction by MoveNet: end to end (decode, letterbox,
    network, mapping back), ``decode``, ``crop`` (the letterbox) and ``network``."""
    images = [load_image(path) for path in paths]
    squares = [model.letterbox(image)[0] for image in images]
    return {
        "end_to_end": lambda i: model(load_image(paths[i])),
        "decode": lambda i: load_image(paths[i]),
        "crop": lambda i: model.letterbox(images[i]),
        "network": lambda i: model.run(squares[i]),
    }


def throughput(predictor: Predictor, paths: list[Path], batch: int = 32) -> float:
    """Images per second of ``predictor`` on ``batch`` files at a time (best of 2 passes)."""
    files = (paths * (batch // len(paths) + 1))[:batch]
    best = min(_seconds(lambda: predictor(files)) for _ in range(2))
    return round(batch / best, 2)


def _seconds(function: Callable[[], Any]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def image_paths(count: int, smoke: bool) -> list[Path]:
    """The first ``count`` LSP test images (``POSELIT_DATA``), or generated ones for ``--smoke``."""
    if smoke:
        root = write_synthetic_lsp(Path(tempfile.mkdtemp()) / "synth", num_images=2 * count, size=(96, 72), seed=0)
        return sorted((root / "images").glob("*.jpg"))[:count]
    records = poselit.data.read_annotations("lsp:test").records
    return [Path(record.image) for record in records[:count]]


def converted(name: str, folder: Path, threads: int) -> TflitePoseModel:
    """Zoo model ``name``'s TFLite file in ``folder`` (``NAME.tflite``) on ``threads`` threads,
    checked against its card; a missing file is a one-line error saying how to make it."""
    path = Path(folder).expanduser() / f"{name}.tflite"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such TFLite file; make it with tools/onnx_to_tflite.py (see its docstring)")
    return TflitePoseModel.from_file(path, threads=threads, card=info(name))


def poselit_rows(name: str, variant: str, threads_list: list[int], flips: tuple[bool, ...], paths: list[Path],
                 tflite_dir: Path = converted_folder()) -> list[Row]:
    """The rows of zoo model or recipe ``name`` in ``variant``: one per thread count and flip
    setting (``tflite``: zoo models only, their files in ``tflite_dir``)."""
    model, bf16 = prepare(load_model(name), variant)
    exported = export_onnx(model, Path(tempfile.mkdtemp()) / "model.onnx") if variant == "onnx" else None
    rows = []
    for threads in threads_list:
        use_threads(threads)
        runner = model if exported is None else quiet_onnx(exported, threads)
        runtime = "onnx" if exported is not None else "torch"  # torch variants stay in torch
        if variant == "tflite":
            runner, runtime = converted(name, tflite_dir, threads), "auto"  # an exported model: its own runtime
        for flip in flips:
            predictor = Predictor(runner, batch_size=1, flip_test=flip, autocast=bf16, runtime=runtime)
            batched = Predictor(runner, batch_size=32, flip_test=flip, autocast=bf16, runtime=runtime)
            info = {"model": name, "method": type(model).__name__, "variant": variant, "threads": threads,
                    "flip_test": flip, "input_size": list(model.input_size),
                    "parameters": sum(p.numel() for p in model.parameters())}
            rows.append(Row(info, threads, poselit_stages(predictor, paths, flip),
                            lambda batched=batched: throughput(batched, paths)))
    return rows


def movenet_rows(name: str, folder: Path, threads_list: list[int], paths: list[Path]) -> list[Row]:
    """The rows of MoveNet model ``name`` (a key of :data:`movenet.MODELS`), one per thread count."""
    rows = []
    for threads in threads_list:
        model = MoveNet(model_path(name, folder), threads)
        info = {"model": name, "method": "MoveNet", "variant": "tflite", "threads": threads, "flip_test": False,
                "input_size": [model.size, model.size], "parameters": None}
        rows.append(Row(info, threads, movenet_stages(model, paths), None))
    return rows


def build_rows(args: argparse.Namespace, paths: list[Path]) -> list[Row]:
    """Every row to time, MoveNet's first (their files checked before any model is built)."""
    flips = {"both": (False, True), "on": (True,), "off": (False,)}[args.flip]
    movenets = [name for name in args.models if name in MOVENET_MODELS]
    try:
        rows = [row for name in movenets for row in movenet_rows(name, args.movenet_dir, args.threads, paths)]
    except (FileNotFoundError, ImportError, ValueError) as err:
        sys.exit(f"latency.py: {err}")
    for name in args.models:
        if name not in MOVENET_MODELS:
            try:
                rows += [row for variant in args.variants
                         for row in poselit_rows(name, variant, args.threads, flips, paths, args.tflite_dir)]
            except FileNotFoundError as err:
                sys.exit(f"latency.py: {err}")
    return rows


def warm_up(rows: list[Row], count: int, settle_s: float) -> None:
    """Each row's stages on the first ``count`` images, untimed."""
    for row in rows:
        use_threads(row.threads)
        for i in range(count):
            for stage in row.stages.values():
                stage(i)
        settle(settle_s)


def alone(row: Row, count: int, settle_s: float) -> float:
    """Median ms of ``row``'s end to end over ``count`` images in a loop of its own."""
    use_threads(row.threads)
    times = [1000 * _seconds(lambda: row.stages["end_to_end"](i)) for i in range(count)]
    settle(settle_s)
    return round(statistics.median(times), 2)


def add_ratios(rows: list[dict[str, Any]]) -> None:
    """``ratio_to``: each row's end-to-end median over each measured MoveNet's at the same
    thread count."""
    reference = {(r["model"], r["threads"]): r["ms"]["end_to_end"] for r in rows if r["model"] in MOVENET_MODELS}
    for row in rows:
        ratios = {name: round(row["ms"]["end_to_end"] / ms, 3)
                  for (name, threads), ms in reference.items() if threads == row["threads"]}
        if ratios:
            row["ratio_to"] = ratios


def measure(args: argparse.Namespace) -> dict[str, Any]:
    paths = image_paths(args.images, args.smoke)
    settle_s = args.settle_ms / 1000
    rows = build_rows(args, paths)
    warm_up(rows, args.warmup, settle_s)
    times, idle = interleaved_times(rows, len(paths), settle_s)
    results = []
    for row, row_times, row_idle in zip(rows, times, idle):
        result = {**row.info, "ms": stage_summary(row_times), "idle_cpu_ms": round(statistics.median(row_idle), 2)}
        if args.alone:
            result["ms"]["end_to_end_alone"] = alone(row, len(paths), settle_s)
        if row.throughput is not None:
            use_threads(row.threads)
            result["images_per_s_batch32"] = row.throughput()
            settle(settle_s)
        else:
            result["images_per_s_batch32"] = None
        results.append(result)
        if args.verbose:
            print(json.dumps(result), flush=True)
    add_ratios(results)
    return {
        "benchmark": "latency",
        "rows": results,
        "images": len(paths),
        "image_source": "generated" if args.smoke else "LSP test (first images, whole image, no box)",
        "settle_ms": args.settle_ms,
        **machine_info(),
        "smoke": args.smoke,
    }


def record_in_cards(result: dict[str, Any], zoo_dir: Path | None = None) -> list[str]:
    """Write into the card of every zoo model of ``result`` its end-to-end milliseconds at
    batch 1 with ``Predictor``'s defaults (ONNX Runtime on the CPU, flip test on), at the most
    threads measured: ``complexity.cpu_ms``, and ``complexity.cpu_ms_measured`` (how and where).
    Returns the names of the cards written."""
    written = []
    zoo_names = set(list_models(zoo_dir=zoo_dir))
    for name in dict.fromkeys(row["model"] for row in result["rows"]):
        rows = [r for r in result["rows"] if r["model"] == name and r["variant"] == "onnx" and r["flip_test"]]
        if name not in zoo_names or not rows:
            continue
        row = max(rows, key=lambda r: r["threads"])
        card = info(name, zoo_dir=zoo_dir)
        capability = f" ({result['cpu_capability']})" if "cpu_capability" in result else ""  # older results lack it
        how = (f"benchmarks/latency.py: end to end (decode, crop, network with flip test, mapping back), batch 1, "
               f"ONNX Runtime (Predictor's default), {row['threads']} thread(s), median of {result['images']} {result['image_source']}; "
               f"{result['cpu']}{capability}, torch {result['torch']}")
        complexity = {**card.complexity, "cpu_ms": row["ms"]["end_to_end"], "cpu_ms_measured": how}
        write_card(dataclasses.replace(card, complexity=complexity), card.source)
        written.append(name)
    return written


def pre_post_share(ms: dict[str, float]) -> float:
    """Share of one image's end-to-end time outside the network: the larger of the residual
    ``pre_post_fraction`` and the stages timed on their own (decode, crop, heatmap decoding),
    so that timing noise in the residual cannot hide them."""
    timed = (ms["decode"] + ms["crop"] + ms.get("decoding", 0.0)) / ms["end_to_end"]
    return max(ms["pre_post_fraction"], timed)


RUNTIME_NAMES = {"tflite": "LiteRT", "onnx": "ONNX Runtime", "fp32": "eager torch"}


def ratio_table(result: dict[str, Any], threads: int = 1) -> str:
    """Markdown: the README's side-by-side table, one row per model, variant and flip
    setting at ``threads`` threads (MoveNet first, then by ratio): median end-to-end ms and
    the ratios to MoveNet Lightning's and Thunder's medians of the same run."""
    rows = [r for r in result["rows"] if r["threads"] == threads and r["variant"] in RUNTIME_NAMES]
    rows.sort(key=lambda r: (r["method"] != "MoveNet", r["ms"]["end_to_end"]))
    lines = [
        "| model | runtime | flip test | 1 thread | ratio to Lightning | ratio to Thunder |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        name = r["model"] if r["method"] == "MoveNet" else f"`{r['model']}`"
        flip = "-" if r["method"] == "MoveNet" else ("on" if r["flip_test"] else "off")
        ratios = [r["ratio_to"].get(f"movenet-{name}") for name in ("lightning", "thunder")]  # a run may lack one
        lines.append(
            f"| {name} | {RUNTIME_NAMES[r['variant']]} | {flip} | {r['ms']['end_to_end']:.1f} | "
            + " | ".join("-" if ratio is None else f"{ratio:.2f}" for ratio in ratios) + " |"
        )
    return "\n".join(lines) + "\n"


def summary_table(result: dict[str, Any]) -> str:
    """Markdown: one row per model and variant, end-to-end ms at batch 1 per thread count
    and flip setting, the largest pre- plus post-processing share of the row
    (:func:`pre_post_share`), and images/s at batch 32 (most threads, flip test on when
    measured; "-" for MoveNet, one image per call)."""
    rows = result["rows"]
    settings = sorted({(r["threads"], r["flip_test"]) for r in rows})
    header = ["model", "variant", *(f"{t} thread{'s' * (t > 1)}, flip {'on' if f else 'off'}" for t, f in settings),
              "pre+post share", "images/s, batch 32"]
    lines = [header, ["---"] * len(header)]
    for model, variant in dict.fromkeys((r["model"], r["variant"]) for r in rows):
        mine = {(r["threads"], r["flip_test"]): r for r in rows if r["model"] == model and r["variant"] == variant}
        cells = [f"{mine[k]['ms']['end_to_end']:.1f}" if k in mine else "-" for k in settings]
        share = max(pre_post_share(r["ms"]) for r in mine.values())
        throughput = mine[max(mine, key=lambda k: (k[0], k[1]))]["images_per_s_batch32"]
        lines.append([f"`{model}`", variant, *cells, f"{100 * share:.0f}%", "-" if throughput is None else f"{throughput:.0f}"])
    return "".join("| " + " | ".join(line) + " |\n" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help="zoo model names, recipe YAMLs, movenet-lightning, movenet-thunder")
    parser.add_argument("--variants", nargs="+", default=["fp32", "bf16-cl"], choices=VARIANTS)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--flip", choices=["both", "on", "off"], default="both")
    parser.add_argument("--images", type=int, default=200, help="images timed (median over them)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed predictions first")
    parser.add_argument("--smoke", action="store_true", help="3 generated images (for the tests)")
    parser.add_argument("--movenet-dir", type=Path, default=DEFAULT_DIR, help="folder of MoveNet's .tflite files")
    parser.add_argument("--tflite-dir", type=Path, default=converted_folder(),
                        help="folder of poselit models' .tflite files (variant tflite; tools/onnx_to_tflite.py)")
    parser.add_argument("--settle-ms", type=float, default=20.0, help="untimed pause after each row's calls (spinning threads)")
    parser.add_argument("--alone", action="store_true", help="also time each row's end to end in a loop of its own")
    parser.add_argument("--verbose", action="store_true", help="print each row as it is summarised")
    parser.add_argument("--cards", nargs="?", const="", metavar="ZOO_DIR",
                        help="write each zoo model's latency into its card (default folder: the zoo's)")
    parser.add_argument("--table", type=Path, metavar="RESULTS_JSON", help="print a result's Markdown table; measure nothing")
    parser.add_argument("--ratios", type=Path, metavar="RESULTS_JSON",
                        help="print a result's side-by-side table (1 thread, ratios to MoveNet); measure nothing")
    args = parser.parse_args()
    if args.table:
        print(summary_table(json.loads(args.table.read_text())), end="")
        return
    if args.ratios:
        print(ratio_table(json.loads(args.ratios.read_text())), end="")
        return
    if not args.models:
        parser.error("name at least one model (or --table RESULTS_JSON)")
    if args.smoke:
        args.images, args.warmup = 3, 1
    result = measure(args)
    if args.cards is not None:
        result["cards_written"] = record_in_cards(result, Path(args.cards) if args.cards else None)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
