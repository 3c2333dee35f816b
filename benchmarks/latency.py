"""End-to-end CPU latency of pose models, and where the time goes.

For each model (a zoo name, or a recipe YAML: latency does not depend on the weights, so
an untrained model built from a recipe measures the same), each thread count and each
variant, it measures on real images (the first ``--images`` LSP test images, whole image,
no box, as MoveNet is measured):

* ``end_to_end_ms``: median of ``Predictor(model)(path)`` at batch 1 (decode the file,
  crop, network, flip test, decoding, mapping back to the image), after warm-up;
* the same split into stages, each a median over the same images: ``decode`` (read the
  file), ``crop`` (box + affine warp), ``network`` (forward on one crop, including the
  heatmap decoding of heatmap methods: ``decoding`` reports that part), ``flip`` (the extra
  cost of the flip test) and ``other`` (the rest: mapping back, Python);
* ``pre_post_fraction``: (end to end - network - flip) / end to end;
* ``images_per_s_batch32``: throughput of ``Predictor(model, batch_size=32)`` on 32 files.

Variants: ``fp32`` (eager float32), ``fp32-cl`` (channels-last), ``bf16`` (bfloat16
autocast), ``bf16-cl``, ``compile`` (``torch.compile``, float32), ``onnx`` (exported to a
temporary file, run by ONNX Runtime with ``--threads`` intra-op threads: ``network`` then
includes the heatmap decoding, which is in the graph). Prints one JSON object.

    POSELIT_DATA=../shared/data python benchmarks/latency.py luvizon-mobilenetv2-lsp \\
        recipes/cpu/bulat.yaml --threads 1 2 --flip both

``--cards`` writes each measured zoo model's figure into its card (``complexity.cpu_ms``,
with ``complexity.cpu_ms_measured`` saying how and where): end to end at batch 1 with
``Predictor``'s defaults (eager float32, flip test on), at the most threads measured.

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
from poselit.onnx_model import OnnxPoseModel
from poselit.predict import Predictor, load_image, whole_image_box
from poselit.zoo import info, list_models, write_card
from poselit.zoo.onnx import export_onnx
from train_step import build, machine_info

VARIANTS = ("fp32", "fp32-cl", "bf16", "bf16-cl", "compile", "onnx")


def interleaved_medians(stages: dict[str, Callable[[int], Any]], count: int) -> dict[str, float]:
    """Median wall time, ms, of each ``stages[name](i)`` over ``i < count``, the stages run
    in turn on each item (not one stage over all items, then the next): a machine whose
    speed drifts (other tenants, clocks) shifts every stage alike instead of some."""
    times: dict[str, list[float]] = {name: [] for name in stages}
    for i in range(count):
        for name, stage in stages.items():
            start = time.perf_counter()
            stage(i)
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(values) for name, values in times.items()}


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


def stages(predictor: Predictor, paths: list[Path], flip: bool) -> dict[str, float]:
    """Median milliseconds of each stage of one image's prediction (see the module docs)."""
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
    result = interleaved_medians(timed, len(paths))
    result["flip"] = max(0.0, result.pop("network_flip", result["network"]) - result["network"])
    result["other"] = max(0.0, result["end_to_end"] - result["decode"] - result["crop"] - result["network"] - result["flip"])
    result = {name: round(ms, 2) for name, ms in result.items()}
    result["pre_post_fraction"] = round(1 - (result["network"] + result["flip"]) / result["end_to_end"], 3)
    return result


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


def measure(args: argparse.Namespace) -> dict[str, Any]:
    paths = image_paths(args.images, args.smoke)
    flips = {"both": (False, True), "on": (True,), "off": (False,)}[args.flip]
    rows = []
    for name in args.models:
        for variant in args.variants:
            model = load_model(name)
            model, bf16 = prepare(model, variant)
            exported = export_onnx(model, Path(tempfile.mkdtemp()) / "model.onnx") if variant == "onnx" else None
            for threads in args.threads:
                torch.set_num_threads(threads)
                cv2.setNumThreads(threads)
                runner = model if exported is None else OnnxPoseModel.from_file(exported, threads=threads)
                for flip in flips:
                    predictor = Predictor(runner, batch_size=1, flip_test=flip, autocast=bf16)
                    for path in paths[: args.warmup]:
                        predictor(path)
                    row = {"model": name, "method": type(model).__name__, "variant": variant, "threads": threads,
                           "flip_test": flip, "input_size": list(model.input_size),
                           "parameters": sum(p.numel() for p in model.parameters()),
                           "ms": stages(predictor, paths, flip)}
                    predictor.batch_size = 32
                    row["images_per_s_batch32"] = throughput(predictor, paths)
                    rows.append(row)
                    if args.verbose:
                        print(json.dumps(row), flush=True)
    return {
        "benchmark": "latency",
        "rows": rows,
        "images": len(paths),
        "image_source": "generated" if args.smoke else "LSP test (first images, whole image, no box)",
        **machine_info(),
        "smoke": args.smoke,
    }


def record_in_cards(result: dict[str, Any], zoo_dir: Path | None = None) -> list[str]:
    """Write into the card of every zoo model of ``result`` its end-to-end milliseconds at
    batch 1 with ``Predictor``'s defaults (eager float32, flip test on), at the most threads
    measured: ``complexity.cpu_ms``, and ``complexity.cpu_ms_measured`` (how and where).
    Returns the names of the cards written."""
    written = []
    zoo_names = set(list_models(zoo_dir=zoo_dir))
    for name in dict.fromkeys(row["model"] for row in result["rows"]):
        rows = [r for r in result["rows"] if r["model"] == name and r["variant"] == "fp32" and r["flip_test"]]
        if name not in zoo_names or not rows:
            continue
        row = max(rows, key=lambda r: r["threads"])
        card = info(name, zoo_dir=zoo_dir)
        how = (f"benchmarks/latency.py: end to end (decode, crop, network with flip test, mapping back), batch 1, "
               f"eager float32, {row['threads']} thread(s), median of {result['images']} {result['image_source']}; "
               f"{result['cpu']}, torch {result['torch']}")
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


def summary_table(result: dict[str, Any]) -> str:
    """Markdown: one row per model and variant, end-to-end ms at batch 1 per thread count
    and flip setting, the largest pre- plus post-processing share of the row
    (:func:`pre_post_share`), and images/s at batch 32 (most threads, flip test on when
    measured)."""
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
        lines.append([f"`{model}`", variant, *cells, f"{100 * share:.0f}%", f"{throughput:.0f}"])
    return "".join("| " + " | ".join(line) + " |\n" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", help="zoo model names or recipe YAMLs")
    parser.add_argument("--variants", nargs="+", default=["fp32", "bf16-cl"], choices=VARIANTS)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--flip", choices=["both", "on", "off"], default="both")
    parser.add_argument("--images", type=int, default=200, help="images timed (median over them)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed predictions first")
    parser.add_argument("--smoke", action="store_true", help="3 generated images (for the tests)")
    parser.add_argument("--verbose", action="store_true", help="print each row as it is measured")
    parser.add_argument("--cards", nargs="?", const="", metavar="ZOO_DIR",
                        help="write each zoo model's latency into its card (default folder: the zoo's)")
    parser.add_argument("--table", type=Path, metavar="RESULTS_JSON", help="print a result's Markdown table; measure nothing")
    args = parser.parse_args()
    if args.table:
        print(summary_table(json.loads(args.table.read_text())), end="")
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
