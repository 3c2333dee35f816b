"""``poselit predict`` (poses in your images, videos and folders) and ``poselit demo`` (the bundled samples).

One JSON document per image (or one line each of ``predictions.jsonl`` with ``--jsonl``)
and the annotated image, written into ``--out`` (default :data:`DEFAULT_OUT`), never over
a file the run reads (:func:`check_outputs_spare_inputs`); the document's schema and the
``--boxes`` file's are in :mod:`poselit.predict`. ``--model`` is a zoo model run by torch,
or an ONNX file run by ONNX Runtime (:func:`poselit.onnx.onnx_file_of`), with the
same outputs. A video (a file of
:data:`VIDEO_SUFFIXES`) gives an annotated video and one JSON line per frame, one person
tracked, or with ``--detect`` every person the detector finds in each frame
(:func:`poselit.video.predict_video`); a video that cannot be read to its end is an
error, its frames up to there written. Every file is whole whenever the run stops, killed
too; ``--skip-existing`` resumes a run (:func:`pending_images`; a video killed half-way is
done again from its start). LightningCLI's ``predict`` (on a recipe's datasets) is
``poselit predict-recipe`` (:mod:`poselit.cli.lightning`).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from poselit.files import load_json
from poselit.smoothing import OneEuroFilter

if TYPE_CHECKING:
    from poselit.predict import BoxFormat, Predictor

DEFAULT_OUT = "runs/predict"
"""Where ``poselit predict`` writes without ``--out``."""

DEMO_MODEL = "bulat-mobilenetv2-lsp"
"""The zoo model ``poselit demo`` runs by default: the best on LSP test (PCK@0.2)."""

DEMO_IMAGES = ("jumping.jpg", "walking.jpg", "park.jpg")
"""The bundled full-body photos ``poselit demo`` runs on (:data:`poselit.predict.SAMPLES`;
origins and licences in ``SOURCES.md``): one person each in the first two, two people in
``park.jpg``, each found by the default person detector."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
"""Image files: what a folder given to ``poselit predict`` is searched for (case-insensitive)."""

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
"""Files ``poselit predict`` treats as videos (case-insensitive); a folder given to it is
searched for these and :data:`IMAGE_SUFFIXES`."""

VIDEO_CODECS = ("auto", "h264", "vp8", "mp4v")
"""``--video-codec``'s choices: ``auto`` and the names of :data:`poselit.video.CODECS` (not
imported here, to keep ``--help`` light)."""

ANNOTATED_MAX_SIDE = 2048
"""Longest side of the annotated images ``poselit predict`` writes; larger images are
downscaled for the picture (the JSON keeps original-image pixels)."""


def add_predict_commands(subparsers: Any) -> None:
    """Add ``poselit predict`` (images) and ``poselit demo`` to an ``argparse`` sub-parser set."""
    predict = subparsers.add_parser(
        "predict",
        help="poses in your images and videos: JSON + annotated images and videos (LightningCLI's predict is "
        "'poselit predict-recipe')",
        description=(
            "Predict poses in images and videos with a zoo model or an exported model, and write one JSON per "
            "image and the annotated images; for a video (" + " ".join(VIDEO_SUFFIXES) + "), the annotated video "
            "and one JSON line per frame, one person tracked (with --detect: every person of each frame). Schema and --boxes format: python -m pydoc "
            "poselit.predict; videos: python -m pydoc poselit.video. "
            "LightningCLI's predict on a recipe's datasets is another command: 'poselit predict-recipe -c RECIPE.yaml'."
        ),
    )
    predict.add_argument("images", nargs="+", metavar="INPUT", help="image files, video files and/or folders")
    predict.add_argument(
        "--model", required=True,
        help="zoo model name, export folder, hf://ORG/NAME[@REVISION], or an ONNX file ('poselit zoo export NAME "
        "--format onnx'; also a folder holding only model.onnx), run by ONNX Runtime on the CPU",
    )
    predict.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    predict.add_argument("--boxes", metavar="FILE", help="JSON: image name -> person box(es); default: whole image")
    predict.add_argument("--box-format", choices=("xywh", "xyxy"), default="xywh", help="of 4-number boxes")
    predict.add_argument("--jsonl", action="store_true", help="write predictions.jsonl instead of one JSON per image")
    predict.add_argument(
        "--skip-existing", action="store_true",
        help="resume an earlier run into the same --out (e.g. one that was killed): skip the images whose JSON "
        "(or predictions.jsonl line) is there and the videos whose two files are; the rest is written as usual",
    )
    predict.add_argument(
        "--padding", type=float,
        help="margin around a box (default: the model's, as in training; its card's input.padding)",
    )
    predict.add_argument(
        "--fill", type=int, help="value of crop pixels outside the image, 0-255 (default: the model's, as in training)"
    )
    predict.add_argument(
        "--detect", action="store_true",
        help="find the people in each image without a --boxes entry and in each video frame (the default person "
        "detector, offline: python -m pydoc poselit.detect) and predict one pose each, the surest first, with its "
        "detection_score in the JSON",
    )
    predict.add_argument(
        "--max-people", type=int, metavar="N", help="with --detect: at most N people per image or frame, the surest"
    )
    _add_run_options(predict)
    _add_video_options(predict)
    predict.set_defaults(func=run_predict)

    demo = subparsers.add_parser(
        "demo",
        help="find the people in the bundled full-body photos, predict their poses and write the annotated results",
        description="Find the people in the bundled full-body sample photos ("
        + ", ".join(DEMO_IMAGES)
        + " in poselit/assets/samples; origins and licences in SOURCES.md there) with the default person "
        "detector, predict each one's pose, and say where the pictures are.",
    )
    demo.add_argument(
        "--model", default=DEMO_MODEL, help=f"zoo model name, export folder or ONNX file (default: {DEMO_MODEL})"
    )
    demo.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    _add_run_options(demo)
    demo.set_defaults(
        func=run_demo, padding=None, fill=None, box_format="xywh", jsonl=False, detect=True, max_people=None,
        skip_existing=False,
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """The options ``predict`` and ``demo`` share: where and how the model runs."""
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--batch-size", type=int, default=16, help="people per forward pass")
    parser.add_argument("--no-flip", action="store_true", help="no flip test")
    parser.add_argument("--autocast", action="store_true", help="mixed precision (bfloat16 on CPU, float16 on GPU)")
    parser.add_argument(
        "--runtime", choices=("auto", "torch", "onnx"),
        help="what runs a zoo model: onnx (ONNX Runtime on the CPU; exported once to ~/.cache/poselit/onnx), "
        "torch, or auto: onnx on the CPU without --autocast (default: $POSELIT_RUNTIME, else auto)",
    )
    parser.add_argument(
        "--refine", action="store_true",
        help="people without a box (and video frames cropped whole): predict again on the crop around the first pose",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_video_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``predict`` for videos: tracking and smoothing."""
    video = parser.add_argument_group(
        "videos", "one person tracked from frame to frame, or with --detect every person of each frame "
        "(python -m pydoc poselit.video); smoothing and tracking options are for tracking"
    )
    video.add_argument("--smooth", action="store_true", help="smooth the joints over time (One Euro filter; not with --detect)")
    defaults = OneEuroFilter()
    video.add_argument(
        "--min-cutoff", type=float, metavar="HZ",
        help=f"One Euro cut-off at rest: lower, less jitter and more lag (default {defaults.min_cutoff}; implies --smooth)",
    )
    video.add_argument(
        "--beta", type=float,
        help=f"One Euro cut-off increase per px/s of speed: higher, less lag on fast moves "
        f"(default {defaults.beta}; implies --smooth)",
    )
    video.add_argument("--min-score", type=float, help="joints scoring at least this are confident (default 0.3)")
    video.add_argument(
        "--min-confident", type=float, metavar="FRACTION",
        help="the person is lost in a frame with fewer confident joints than this fraction (default 0.5)",
    )
    video.add_argument(
        "--video-codec", choices=VIDEO_CODECS, default="auto",
        help="of the annotated video: h264 (.mp4), vp8 (.webm; several times slower to write), mp4v (.mp4; browsers "
        "do not play it); auto (default): the first of these that this OpenCV writes",
    )


def list_images(inputs: Sequence[str | Path], suffixes: Sequence[str] = IMAGE_SUFFIXES) -> list[Path]:
    """Files named on the command line: files as given, folders searched (not recursively)
    for ``suffixes``, in name order."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(p for p in item.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
            if not found:
                raise FileNotFoundError(f"nothing to predict on ({', '.join(suffixes)}) in folder {item}")
            paths += found
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(f"no such image or folder: {item}")
    return paths


def read_boxes(path: str | Path) -> dict[str, Any]:
    """A ``--boxes`` file: JSON object, image name or path -> box or list of boxes."""
    boxes = load_json(path, "boxes file", ValueError)
    if not isinstance(boxes, dict):
        raise ValueError(f"{path}: expected a JSON object mapping image names to boxes")
    return boxes


def planned_outputs(
    out: str | Path,
    images: Sequence[Path],
    videos: Sequence[Path] = (),
    *,
    jsonl: bool = False,
    video_suffix: str = ".mp4",
) -> dict[Path, str]:
    """The files a run writes into ``out``, each with what it comes from (an input, or ``--jsonl``);
    ``video_suffix`` is the annotated videos' (:attr:`poselit.video.VideoCodec.suffix`)."""
    out = Path(out)
    image_suffixes = (".png",) if jsonl else (".png", ".json")
    planned = {out / f"{path.stem}{suffix}": str(path) for path in images for suffix in image_suffixes}
    if jsonl and images:
        planned[out / "predictions.jsonl"] = "--jsonl"
    planned.update({out / f"{path.stem}{suffix}": str(path) for path in videos for suffix in (video_suffix, ".jsonl")})
    return planned


def pending_images(paths: Sequence[Path], out: str | Path, *, jsonl: bool = False) -> list[Path]:
    """The images of ``paths`` that an earlier run into ``out`` has not finished: without
    their ``<stem>.json``, or with ``jsonl`` without a whole line of theirs in
    ``predictions.jsonl`` (an image's document is written after its picture, so a finished
    image has both)."""
    from poselit.predict_results import whole_lines

    out = Path(out)
    if not jsonl:
        return [path for path in paths if not (out / f"{path.stem}.json").is_file()]
    done = {Path(str(document.get("image"))).name for document in whole_lines(out / "predictions.jsonl")
            if isinstance(document, dict)}
    return [path for path in paths if path.name not in done]


def check_outputs_spare_inputs(outputs: Mapping[Path, str], inputs: Iterable[Path]) -> None:
    """A ``ValueError`` naming both files when one of ``outputs`` (see :func:`planned_outputs`)
    is one of ``inputs``, the files the run reads (images, videos, boxes file, model files):
    checked before anything is written, so that no run writes over what it reads."""
    read = {Path(path).resolve(): Path(path) for path in inputs}
    for output, origin in outputs.items():
        source = read.get(output.resolve())
        if source is not None:
            raise ValueError(
                f"the output {output} (of {origin}) would overwrite {source}, which this run reads; "
                "choose another --out folder"
            )


def model_files(model: str) -> list[Path]:
    """The local files ``--model`` reads: the file it names, or those of the folder it names."""
    path = Path(model).expanduser()
    if path.is_dir():
        return [p for p in path.iterdir() if p.is_file()]
    return [path] if path.is_file() else []


def check_unique_stems(paths: Sequence[Path]) -> None:
    """A ``ValueError`` naming the first two of ``paths`` whose outputs (``<out>/<stem>.*``) would collide."""
    stems: dict[str, Path] = {}
    for path in paths:
        if path.stem in stems:
            raise ValueError(f"two inputs would write the same outputs {path.stem}.*: {stems[path.stem]} and {path}")
        stems[path.stem] = path


def predict_files(
    predictor: Predictor,
    paths: Sequence[Path],
    out: str | Path,
    *,
    boxes: Mapping[str, Any] | None = None,
    box_format: BoxFormat = "xywh",
    jsonl: bool = False,
    model: str | None = None,
    progress: bool = True,
    append: bool = False,
) -> list[Path]:
    """Predict on image files; write the JSON documents and annotated images into ``out``.

    Returns the written files. ``boxes`` maps an image's path as given, or its file name,
    to its boxes (see :func:`read_boxes`); keys that match no image are reported. Each
    image's picture is written, then its document: a JSON file, or with ``jsonl`` a line
    of ``predictions.jsonl`` (which ``append`` continues, else starts afresh). Every file
    is whole at any moment (:func:`poselit.atomic.write_atomic`,
    :class:`~poselit.predict_results.JsonLines`), so a killed run is resumed by running
    the images of :func:`pending_images` with ``append``.
    """
    from contextlib import nullcontext

    from tqdm import tqdm

    from poselit.atomic import make_folder, remove_abandoned_temporaries, write_atomic
    from poselit.predict import document_text, draw_predictions, image_document, load_image
    from poselit.predict_results import JsonLines
    from poselit.visualize import save_image

    boxes = dict(boxes or {})
    check_unique_stems(paths)
    unused = set(boxes) - {str(p) for p in paths} - {p.name for p in paths}
    if unused:
        warnings.warn(f"boxes for images that were not given: {', '.join(sorted(unused))}", stacklevel=2)
    out = Path(out)
    check_outputs_spare_inputs(planned_outputs(out, paths, jsonl=jsonl), paths)
    make_folder(out)
    remove_abandoned_temporaries(out)  # of earlier runs killed mid-write
    written: list[Path] = []
    lines_file = JsonLines(out / "predictions.jsonl", append=append) if jsonl else nullcontext()
    with lines_file as lines, tqdm(total=len(paths), desc="predicting", unit="image", disable=not progress) as bar:
        for start in range(0, len(paths), predictor.batch_size):
            chunk = paths[start : start + predictor.batch_size]
            images = [load_image(p) for p in chunk]
            chunk_boxes = [boxes.get(str(p), boxes.get(p.name)) for p in chunk]
            people = predictor.predict(
                images, boxes=chunk_boxes, box_format=box_format, names=[str(p) for p in chunk], progress=False
            )
            for i, (path, image) in enumerate(zip(chunk, images)):
                mine = [p for p in people if p.image_index == i]
                drawn = out / f"{path.stem}.png"
                save_image(draw_predictions(image, mine, ANNOTATED_MAX_SIDE), drawn)
                written.append(drawn)
                document = image_document(str(path), image.shape[:2], predictor.skeleton, mine, model)
                if lines is not None:
                    lines.write(document)
                else:
                    write_atomic(out / f"{path.stem}.json", document_text(document))
                    written.append(out / f"{path.stem}.json")
            bar.update(len(chunk))
    if jsonl:
        written.append(out / "predictions.jsonl")
    return written


def _predictor(args: argparse.Namespace) -> Predictor:
    """The predictor the command line describes: a torch model (zoo name, ``hf://``, export
    folder) on ``--device``, or an ONNX file run by ONNX Runtime on the CPU."""
    import torch

    from poselit.cli.zoo import CHECKPOINT_SUFFIXES
    from poselit.onnx import OnnxPoseModel, onnx_file_of
    from poselit.predict import Predictor

    options = {
        "batch_size": args.batch_size,
        "flip_test": False if args.no_flip else None,
        "autocast": args.autocast,
        "refine": args.refine,
        "padding": args.padding,
        "fill": args.fill,
        **_detection(args),
    }
    onnx_file = onnx_file_of(args.model)
    if onnx_file is not None and args.runtime == "torch":
        raise ValueError(f"--runtime torch: {onnx_file} is an ONNX model, which runs in ONNX Runtime")
    if onnx_file is None:
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        return Predictor.from_zoo(args.model, device=device, runtime=args.runtime, **options)
    if onnx_file.suffix.lower() in CHECKPOINT_SUFFIXES:
        raise ValueError(
            f"--model {onnx_file}: a checkpoint; export it first ('poselit zoo export {onnx_file} --name NAME "
            "--out DIR') and give --model DIR"
        )
    if args.autocast:
        raise ValueError(f"--autocast: {onnx_file} is an ONNX model, which runs in float32 as exported")
    return Predictor(OnnxPoseModel.from_file(onnx_file), device=args.device, **options)


def _detection(args: argparse.Namespace) -> dict[str, Any]:
    """The ``detector`` and ``max_people`` of :class:`~poselit.predict.Predictor` that ``--detect``
    and ``--max-people`` ask for."""
    if args.max_people is not None and not args.detect:
        raise ValueError("--max-people N limits the people --detect finds: add --detect")
    if not args.detect:
        return {}
    from poselit.detect import default_detector

    return {"detector": default_detector(), "max_people": args.max_people}


def _predict_and_report(
    args: argparse.Namespace, predictor: Predictor, paths: Sequence[Path], boxes: Mapping[str, Any] | None
) -> list[Path]:
    """Predict on the images ``paths`` (with ``--skip-existing``, those of :func:`pending_images`),
    write the files, say how many; returns them."""
    todo = pending_images(paths, args.out, jsonl=args.jsonl) if args.skip_existing else paths
    written = predict_files(
        predictor,
        todo,
        args.out,
        boxes=boxes,
        box_format=args.box_format,
        jsonl=args.jsonl,
        model=args.model,
        progress=not args.quiet,
        append=args.skip_existing,
    )
    skipped = f", skipped {len(paths) - len(todo)} already there (--skip-existing)" if args.skip_existing else ""
    print(f"{len(todo)} images ({predictor.runtime}): wrote {len(written)} files to {args.out}{skipped}")
    return written


def is_video(path: Path) -> bool:
    """Whether ``poselit predict`` treats a file as a video (by its suffix, :data:`VIDEO_SUFFIXES`).

    >>> is_video(Path("holiday/CLIP.MP4")), is_video(Path("photo.jpg"))
    (True, False)
    """
    return path.suffix.lower() in VIDEO_SUFFIXES


def smoothing_filter(args: argparse.Namespace) -> OneEuroFilter | None:
    """The One Euro filter of ``--smooth`` / ``--min-cutoff`` / ``--beta``, or ``None``."""
    settings = {name: getattr(args, name) for name in ("min_cutoff", "beta") if getattr(args, name) is not None}
    return OneEuroFilter(**settings) if args.smooth or settings else None


def predict_videos(predictor: Predictor, videos: Sequence[Path], args: argparse.Namespace) -> None:
    """Track the person through each video (with a detector: find every person of each frame),
    write its outputs into ``--out`` and say so.

    A video that ends before the frame count its header announces is an error after its
    frames are written (:class:`~poselit.video.VideoReadError`, like an unreadable one).
    """
    from poselit.video import VideoEndedEarly, VideoReadError, output_paths, predict_video, video_codec

    tracking = {name: getattr(args, name) for name in ("min_score", "min_confident") if getattr(args, name) is not None}
    smoothing, codec = smoothing_filter(args), video_codec(args.video_codec)
    for path in videos:
        if args.skip_existing and all(output.is_file() for output in output_paths(path, args.out, codec)):
            print(f"{path}: skipped, its outputs are in {args.out} (--skip-existing)")
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error", VideoEndedEarly)
            try:
                result = predict_video(
                    predictor, path, args.out, smoothing=smoothing, model=args.model, progress=not args.quiet,
                    codec=codec, **tracking,
                )
            except VideoEndedEarly as early:
                raise VideoReadError(str(early)) from None
        played = "" if codec.browsers else ", which browsers do not play" + (
            "" if args.video_codec == codec.name else ": this OpenCV writes neither H.264 nor VP8"
        )
        lost = "nobody found" if predictor.detector is not None else "person lost"
        print(
            f"{path}: {result.frames} frames ({lost} in {result.lost}): wrote {result.video} "
            f"({codec.description}{played}) and {result.frames_file}"
        )


def run_predict(args: argparse.Namespace) -> int:
    """Handler of ``poselit predict INPUT...``: images, then videos."""
    from poselit.video import check_smoothing, video_codec

    paths = list_images(args.images, IMAGE_SUFFIXES + VIDEO_SUFFIXES)
    videos = [p for p in paths if is_video(p)]
    images = [p for p in paths if not is_video(p)]
    check_unique_stems(videos)
    if args.jsonl and images and any(v.stem == "predictions" for v in videos):
        raise ValueError("a video named predictions.* would overwrite predictions.jsonl (--jsonl); rename it")
    read = [*paths, *([Path(args.boxes)] if args.boxes else []), *model_files(args.model)]
    suffix = video_codec(args.video_codec).suffix if videos else ".mp4"
    check_outputs_spare_inputs(planned_outputs(args.out, images, videos, jsonl=args.jsonl, video_suffix=suffix), read)
    boxes = read_boxes(args.boxes) if args.boxes else None
    predictor = _predictor(args)
    if videos:
        check_smoothing(predictor, smoothing_filter(args))  # before any image is written
    if images:
        _predict_and_report(args, predictor, images, boxes)
    predict_videos(predictor, videos, args)
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """Handler of ``poselit demo``: the people of :data:`DEMO_IMAGES` (found by the default
    detector), then the names of the pictures to open."""
    from poselit.predict import SAMPLES

    written = _predict_and_report(args, _predictor(args), [SAMPLES / name for name in DEMO_IMAGES], None)
    print("the pictures:", *(str(path) for path in written if path.suffix == ".png"))
    return 0
