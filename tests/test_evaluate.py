"""``poselit eval``: predictions files, matching to records, clear errors, tables, the CLI."""

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from poselit.cli import main
from poselit.cli.eval import add_eval_command
from poselit.data import read_annotations
from poselit.evaluate import (
    EvaluationReport,
    PredictionError,
    align_predictions,
    evaluate_poses,
    evaluate_predictions,
    joint_slots,
    parse_predictions,
    predictions_document,
    predictions_from_images,
    read_predictions,
    source_key,
)
from poselit.skeletons import LSP, LSP_TO_MPII, MPII, remap_joints
from poselit.tables import PUBLISHED, TABLE_COLUMNS, Row, Table, published, published_rows
from poselit.visualize import plot_pck_curve


def eval_cli(argv):
    """Parse ``poselit eval ...`` with :func:`add_eval_command` and run its handler."""
    parser = argparse.ArgumentParser(prog="poselit")
    add_eval_command(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["eval", *argv])
    return args.func(args)


@pytest.fixture(scope="module")
def lsp_test(synthetic_lsp):
    """The split name of the 4 test records of the synthetic LSP folder, the records and
    their ground truth."""
    spec = f"lsp:test@{synthetic_lsp}"
    annotations = read_annotations(spec)
    return spec, annotations, np.stack([r.keypoints for r in annotations.records]).astype(np.float64)


def write(tmp_path, document, name="preds.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


# --- reading and matching -----------------------------------------------------------------


def test_ground_truth_file_scores_100_and_matches_by_source_or_index(lsp_test, tmp_path):
    spec, annotations, truth = lsp_test
    document = predictions_document(annotations, truth, dataset=spec)
    assert document["predictions"][0]["source"] == "joints.mat#5"  # file name and item only
    document["predictions"].reverse()  # order does not matter when matching by source
    document["predictions"][0] = {"index": 3, "keypoints": truth[3].tolist()}
    report = evaluate_predictions(write(tmp_path, document))
    assert report.records == 4 and report.label == "preds"
    assert [r.metric for r in report.results] == ["PCK@0.2", "PCP@0.5"]
    assert all(v == 100 for r in report.results for v in r.columns.values())


def test_far_predictions_score_0(lsp_test):
    _, annotations, truth = lsp_test
    report = evaluate_poses(annotations, truth + 1e4, label="far")
    assert all(v == 0 for r in report.results for v in r.columns.values())


def test_errors_name_the_record(lsp_test, tmp_path):
    spec, annotations, truth = lsp_test

    def fails(document, pattern):
        with pytest.raises(PredictionError, match=pattern):
            evaluate_predictions(write(tmp_path, document), spec)

    good = predictions_document(annotations, truth)
    wrong_k = json.loads(json.dumps(good))
    wrong_k["predictions"][2]["keypoints"] = truth[2, :13].tolist()
    fails(wrong_k, r"predictions\[2\] \(record joints.mat#7\): 13 keypoints, expected 14 for skeleton 'lsp'")
    nan = json.loads(json.dumps(good))
    nan["predictions"][1]["keypoints"][9] = [None, 3.0]
    fails(
        nan,
        r"predictions\[1\] \(record joints.mat#6\): non-finite coordinates for joints \['left_shoulder'\]",
    )
    fails({"predictions": good["predictions"][:3]}, r"no prediction for 1 of 4 records .* joints.mat#8")
    fails(
        {"predictions": good["predictions"] + good["predictions"][:1]},
        r"predictions\[4\]: record joints.mat#5 already",
    )
    unknown = json.loads(json.dumps(good))
    unknown["predictions"][0]["source"] = "joints.mat#1"
    fails(unknown, r"predictions\[0\]: no record 'joints.mat#1' in the dataset \(wrong split\?\)")
    fails({"predictions": [{"index": 4, "keypoints": truth[0].tolist()}]}, "index 4 is outside the 4 records")
    scores = predictions_document(annotations, truth, np.ones((4, 14)))
    del scores["predictions"][3]["scores"]
    fails(scores, r"scores are given for some predictions but not for .*predictions\[3\]")
    with pytest.raises(PredictionError, match="exactly one of 'source', 'index' and 'image'"):
        parse_predictions([{"keypoints": [[0, 0]]}])
    with pytest.raises(PredictionError, match=r"list of \[x, y\] pairs"):
        parse_predictions([{"index": 0, "keypoints": [1, 2, 3]}])
    with pytest.raises(PredictionError, match="no 'dataset' in the file"):
        evaluate_predictions(write(tmp_path, good))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(PredictionError, match="not a readable JSON file"):
        read_predictions(tmp_path / "broken.json")


def test_lsp_predictions_in_mpii_slots_are_read_through_lsp_to_mpii(lsp_test, tmp_path):
    spec, annotations, truth = lsp_test
    moved = truth + np.linspace(0, 30, 14)[None, :, None]
    in_lsp_order = evaluate_poses(annotations, moved)
    mpii_slots, _ = remap_joints(moved, np.full(moved.shape[:2], 2), LSP_TO_MPII)
    document = predictions_document(annotations, mpii_slots)
    document["skeleton"] = "mpii"
    in_mpii_order = evaluate_predictions(write(tmp_path, document), spec)
    assert in_mpii_order.results == in_lsp_order.results
    assert joint_slots(MPII, LSP) == (0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15, 8, 9)
    with pytest.raises(PredictionError, match=r"lack joints of 'mpii': \['pelvis', 'thorax', 'upper_neck'\]"):
        joint_slots(LSP, MPII)


def test_source_key():
    assert source_key("/data/lsp/joints.mat#1001") == "joints.mat#1001"
    assert source_key("C:/x/valid.h5#7") == "valid.h5#7"


# --- tables and JSON --------------------------------------------------------------------------


def test_table_text_and_markdown_layout():
    table = Table(
        "T",
        ("Head", "Total"),
        (Row("ours", {"Head": 97.25, "Total": float("nan")}), Row("paper", {"Head": 9})),
    )
    assert table.to_text().splitlines() == [
        "T",
        "       Head  Total",
        "ours   97.2      -",
        "paper     9      -",
    ]
    assert table.to_markdown().splitlines()[2:] == [
        "|  | Head | Total |",
        "| --- | ---: | ---: |",
        "| ours | 97.2 | - |",
        "| paper | 9 | - |",
    ]
    assert table.to_dict()["rows"][0]["values"] == {"Head": 97.25, "Total": None}


def test_published_rows_match_dataset_and_metric():
    rows = published_rows(["bulat2016", "luvizon2017"], "lsp", "PCK@0.2")
    assert [r.values["Total"] for r in rows] == [90.7, 91.1]
    assert published_rows(["bulat2016"], "mpii", "PCKh@0.5")[0].values["AUC"] == 59.6
    mpii = published_rows(["belagiannis2017"], "mpii", "PCKh@0.5")  # headline rows, not every Table I row
    assert [r.values["Total"] for r in mpii] == [84.6, 88.1]
    with pytest.raises(KeyError, match="no published results for newell2016"):
        published_rows(["newell2016"], "mpii", "PCKh@0.5")
    assert len({ref.id for ref in PUBLISHED}) == len(PUBLISHED)  # what sidecars cite: unique ids
    for ref in PUBLISHED:
        assert ref.id.startswith(f"{ref.key}/") and set(ref.values) <= set(TABLE_COLUMNS[ref.metric]), ref.id
        assert published(ref.id) is ref
    for ref in PUBLISHED:  # the papers' Total is consistent with their columns (PCP: 10 sticks)
        if ref.metric.startswith("PCP"):
            v = ref.values
            sticks = (
                v["Torso"]
                + v["Head"]
                + 2 * sum(v[c] for c in ("Upper leg", "Lower leg", "Upper arm", "Forearm"))
            )
            assert sticks / 10 == pytest.approx(v["Total"], abs=0.06), ref.label


def test_cli_prints_tables_with_references_and_writes_json(lsp_test, tmp_path, capsys):
    spec, annotations, truth = lsp_test
    moved = truth.copy()
    moved[:, LSP.index("head_top")] += 1e3  # head top always wrong
    scores = np.tile(np.linspace(1, 0, 14), (4, 1))
    path = write(tmp_path, predictions_document(annotations, moved, scores, dataset=spec, label="mine"))
    assert eval_cli([str(path), "--json", str(tmp_path / "first.json"), "--reference", "bulat2016"]) == 0
    out = capsys.readouterr().out
    assert "PCK@0.2" in out and "PCP@0.5" in out and "Visibility AP" in out
    row = next(line for line in out.splitlines() if line.startswith("mine "))
    assert row.split()[1:] == ["50.0", "100.0", "100.0", "100.0", "100.0", "100.0", "100.0", "92.9", "92.9"]
    assert "Bulat & Tzimiropoulos 2016" in out
    saved = json.loads((tmp_path / "first.json").read_text())
    assert (
        saved["results"][0]["columns"]["Head"] == 50
        and saved["tables"][0]["rows"][1]["values"]["Total"] == 90.7
    )

    code = eval_cli(
        [
            str(path),
            "--label",
            "again",
            "--reference",
            str(tmp_path / "first.json"),
            "--format",
            "markdown",
            "--per-joint",
            "--plot",
            str(tmp_path / "plots" / "pck.png"),
        ]
    )
    assert code == 0
    # the PCK curves of this report and of the reference results file, in one plot
    again = evaluate_predictions(path, label="again")
    expected = plot_pck_curve([again, EvaluationReport.load(tmp_path / "first.json")], title=again.dataset)
    assert np.array_equal(cv2.imread(str(tmp_path / "plots" / "pck.png"))[..., ::-1], expected)
    out = capsys.readouterr().out
    assert "| again | 50.0 |" in out and "| mine | 50.0 |" in out and "| head_top | 0.0 | 4 |" in out
    report = EvaluationReport.load(tmp_path / "first.json")
    assert report.results[0].columns == saved["results"][0]["columns"]
    with pytest.raises(ValueError, match="neither a paper"):
        eval_cli([str(path), "--reference", "nobody2020"])


def test_cli_main_wires_eval_when_present(lsp_test, tmp_path, capsys):
    from poselit.cli import main

    with pytest.raises(SystemExit) as help_exit:
        main(["eval", "--help"])
    assert help_exit.value.code == 0 and "--plot" in capsys.readouterr().out
    spec, annotations, truth = lsp_test
    path = write(tmp_path, predictions_document(annotations, truth, dataset=spec))
    assert main(["eval", str(path)]) == 0
    assert "PCK@0.2" in capsys.readouterr().out
    bad = write(tmp_path, {"predictions": [{"index": 0, "keypoints": [[0, 0]]}]}, "bad.json")
    assert main(["eval", str(bad), "--dataset", spec]) == 2
    assert "1 keypoints, expected 14" in capsys.readouterr().err


def test_eval_progress_bar_on_request(lsp_test, tmp_path, capsys):
    spec, annotations, truth = lsp_test
    path = write(tmp_path, predictions_document(annotations, truth, dataset=spec))
    assert eval_cli([str(path), "--progress"]) == 0
    err = capsys.readouterr().err
    assert "scoring" in err and "4/4" in err
    assert eval_cli([str(path)]) == 0 and eval_cli([str(path), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""


# --- the output of poselit predict ----------------------------------------------------------


def two_people_on_one_image():
    """Records of two people on ``a.jpg`` and one on ``b.jpg`` (generated LSP poses)."""
    from poselit.data.records import AnnotationSet, PoseRecord

    rng = np.random.default_rng(0)
    records = []
    for i, (image, center) in enumerate((("a.jpg", (40, 50)), ("a.jpg", (160, 50)), ("b.jpg", (60, 60)))):
        keypoints = np.asarray(center, np.float32) + rng.uniform(-30, 30, (14, 2)).astype(np.float32)
        norm = LSP.torso_size(keypoints, np.full(14, 2))
        records.append(PoseRecord(Path("imgs") / image, keypoints, np.full(14, 2, np.uint8),
                                  np.asarray(center, np.float32), 0.5, norm, LSP, f"x.json#{i}"))
    return AnnotationSet(records, LSP, "generated")


def image_document(image, people, model="m"):
    """A ``poselit predict`` document of ``people``: (keypoints, box centre) pairs."""
    return {"image": f"photos/{image}", "width": 200, "height": 100, "model": model,
            "skeleton": {"name": "lsp", "joints": list(LSP.joints), "limbs": []},
            "people": [{"box": {"center": list(map(float, c)), "scale": 0.5}, "keypoints": k.tolist(),
                        "scores": [0.5] * 14} for k, c in people]}


def test_predict_documents_match_records_by_image_and_nearest_box(tmp_path):
    annotations = two_people_on_one_image()
    a0, a1, b = annotations.records
    documents = [image_document("a.jpg", [(a1.keypoints, a1.center + 3), (a0.keypoints, a0.center - 2)]),
                 image_document("b.jpg", [(b.keypoints, b.center)])]
    out = tmp_path / "predict"
    out.mkdir()
    for i, document in enumerate(documents):
        (out / f"{i}.json").write_text(json.dumps(document))
    (tmp_path / "predictions.jsonl").write_text("".join(json.dumps(d) + "\n" for d in documents))
    for path in (out, tmp_path / "predictions.jsonl"):
        file = read_predictions(path)
        assert file.skeleton == "lsp" and file.label == "m" and len(file.predictions) == 3
        keypoints, scores = align_predictions(file, annotations)
        np.testing.assert_allclose(keypoints, np.stack([r.keypoints for r in annotations.records]), atol=1e-5)
        report = evaluate_poses(annotations, keypoints, scores)
        assert report.results[0].columns["Total"] == 100

    def fails(people_a, pattern, image="a.jpg"):
        with pytest.raises(PredictionError, match=pattern):
            align_predictions(predictions_from_images([("doc", image_document(image, people_a))]), annotations)

    fails([(a0.keypoints, a0.center)], r"1 predictions for image 'a.jpg', which has 2 annotated people")
    fails([(b.keypoints, b.center)], r"no record of image 'c.jpg' in generated \(wrong split\?\)", image="c.jpg")
    no_center = image_document("a.jpg", [(a0.keypoints, a0.center), (a1.keypoints, a1.center)])
    del no_center["people"][0]["box"]
    with pytest.raises(PredictionError, match="several people: give each prediction's 'center'"):
        align_predictions(predictions_from_images([("doc", no_center)]), annotations)
    with pytest.raises(PredictionError, match=r"bad.json: expected a 'poselit predict' image document"):
        predictions_from_images([("bad.json", {"people": 3})])


def lsp_subset(data_root, folder, first: int, count: int):
    """The real LSP images ``first`` ... ``first + count - 1`` (1-based) as an LSP-layout
    folder: their joints.mat columns and the images, linked as im0001.jpg, ... The reader's
    test split is the second half."""
    import scipy.io

    joints = scipy.io.loadmat(data_root / "lsp" / "joints.mat")["joints"][:, :, first - 1 : first - 1 + count]
    (folder / "images").mkdir(parents=True)
    scipy.io.savemat(folder / "joints.mat", {"joints": joints})
    for i in range(count):
        (folder / "images" / f"im{i + 1:04d}.jpg").symlink_to(data_root / "lsp" / "images" / f"im{first + i:04d}.jpg")
    return folder


def test_real_lsp_predict_then_eval_round_trip(data_root, tmp_path, capsys):
    """``poselit predict`` with a box file of the split's people, then ``poselit eval`` on
    what it wrote: the keypoints scored are the predictor's, each on its own record."""
    from poselit.cli.predict import DEMO_MODEL
    from poselit.predict import Predictor

    root = lsp_subset(data_root, tmp_path / "lsp8", first=1001, count=8)
    spec = f"lsp:test@{root}"
    annotations = read_annotations(spec)
    images = [str(r.image) for r in annotations.records]
    boxes = {Path(r.image).name: {"center": r.center.tolist(), "scale": float(r.scale)} for r in annotations.records}
    (tmp_path / "boxes.json").write_text(json.dumps(boxes))
    for extra in ([], ["--jsonl"]):
        out = tmp_path / f"predict{len(extra)}"
        assert main(["predict", *images[::-1], "--model", DEMO_MODEL, "--out", str(out), "--device", "cpu",
                     "--boxes", str(tmp_path / "boxes.json"), "--quiet", *extra]) == 0
        assert main(["eval", str(out), "--dataset", spec, "--json", str(tmp_path / "r.json")]) == 0
        assert f"{spec}, 4 people: PCK@0.2" in capsys.readouterr().out
        report = EvaluationReport.load(tmp_path / "r.json")
        assert report.label == DEMO_MODEL and [r.metric for r in report.results] == ["PCK@0.2", "PCP@0.5", "Visibility AP"]
        keypoints, _ = align_predictions(read_predictions(out), annotations)
        poses = Predictor.from_zoo(DEMO_MODEL)(images, boxes=[boxes[Path(i).name] for i in images])
        np.testing.assert_allclose(keypoints, np.stack([p.keypoints for p in poses]), atol=0.006)  # 0.01 px rounding


# --- real data ------------------------------------------------------------------------------


def test_real_mpii_valid_file_round_trip(data_root, tmp_path, capsys):
    annotations = read_annotations("mpii:valid", data_root)
    truth = np.stack([r.keypoints for r in annotations.records]).astype(np.float64)
    visibility = np.stack([r.visibility for r in annotations.records])
    norm = np.array([r.norm for r in annotations.records])
    # Every 3rd person: all joints 0.6 x head size to the right -> wrong; the rest exact.
    moved = np.arange(len(truth)) % 3 == 0
    preds = truth + np.where(moved, 0.6 * norm, 0.0)[:, None, None] * [1.0, 0.0]
    scores = (visibility == 2) + 0.0  # a perfect visibility ranking
    document = predictions_document(annotations, preds, scores, dataset="mpii:valid", label="shifted")
    document["predictions"] = document["predictions"][::-1]
    path = write(tmp_path, document)
    assert eval_cli([str(path), "--root", str(data_root), "--reference", "belagiannis2017"]) == 0
    out = capsys.readouterr().out
    assert "mpii:valid, 2958 people: PCKh@0.5" in out and "Belagiannis & Zisserman 2017 [MPII valid]" in out
    report = evaluate_predictions(path, data_root=data_root)
    pckh, pcp, ap = report.results
    assert report.label == "shifted" and report.dataset == "mpii:valid"
    total = [i for i, n in enumerate(MPII.joints) if n not in ("pelvis", "thorax")]
    scored = visibility[:, total] > 0
    expected = 100 * (scored & ~moved[:, None]).sum() / scored.sum()
    assert pckh.columns["Total"] == pytest.approx(expected, abs=1e-9)
    # AUC: moved people (0.6 > 0.5) never count; the others count from t = 0.
    assert pckh.columns["AUC"] == pytest.approx(expected, abs=1e-9)
    head = [MPII.index("upper_neck"), MPII.index("head_top")]
    per_joint = [100 * ((visibility[:, j] > 0) & ~moved).sum() / (visibility[:, j] > 0).sum() for j in head]
    assert pckh.columns["Head"] == pytest.approx(np.mean(per_joint), abs=1e-9)
    assert ap.columns["AP"] == 100
    assert ap.counts == {"visible": (visibility == 2).sum(), "occluded": (visibility == 1).sum()}
    assert pcp.metric == "PCP@0.5" and pcp.counts["head"] > 2900


def test_coco_format_eval_reports_oks_ap_with_given_sigmas(tmp_path, capsys):
    """A custom COCO-format file written here: OKS AP next to PCK, the category's sigmas
    (or --sigmas) used, clear one-line errors for sigmas that do not fit."""
    category = {"id": 1, "name": "hands", "keypoints": ["nose", "left_hand", "right_hand"], "skeleton": [[1, 2], [1, 3]]}
    people = [
        {"id": n, "image_id": n % 2, "category_id": 1, "iscrowd": 0, "area": 2500.0, "bbox": [0, 0, 50, 50],
         "keypoints": [10 + 100 * n, 10, 2, 20 + 100 * n, 30, 2, 30 + 100 * n, 30, 1]}
        for n in range(4)
    ]
    crowd = {"id": 9, "image_id": 0, "category_id": 1, "iscrowd": 1, "area": 900.0, "bbox": [60, 60, 30, 30],
             "keypoints": [0] * 9}
    data = {"images": [{"id": 0, "file_name": "a.jpg"}, {"id": 1, "file_name": "b.jpg"}],
            "annotations": [*people, crowd], "categories": [{**category, "sigmas": [0.02, 0.05, 0.05]}]}
    path = write(tmp_path, data, "hands.json")
    spec = f"coco@{path}"
    annotations = read_annotations(spec)
    truth = np.stack([r.keypoints for r in annotations.records]).astype(np.float64)
    truth[:, 0, 0] += 1.0  # 1 px on the nose: OKS exp(-1 / (2 * 2500 * (2 * 0.02)^2)) / 3 + 2/3 = 0.961
    preds = write(tmp_path, predictions_document(annotations, truth, dataset=spec, label="mine"))
    assert eval_cli([str(preds), "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert "OKS AP" in out and "PCK@0.2" in out and "default OKS sigma" not in out
    oks = next(r for r in json.loads((tmp_path / "r.json").read_text())["results"] if r["metric"] == "OKS AP")
    assert oks["columns"]["AP"] == 100.0 and oks["counts"] == {"people": 4, "ignore regions": 1}
    # A much tighter nose sigma: OKS 2/3 + exp(-1 / (2 * 2500 * 0.002^2)) / 3 = 0.667, below 0.70.
    assert eval_cli([str(preds), "--sigmas", "0.001", "0.05", "0.05", "--json", str(tmp_path / "s.json")]) == 0
    oks = next(r for r in json.loads((tmp_path / "s.json").read_text())["results"] if r["metric"] == "OKS AP")
    assert oks["columns"]["AP50"] == 100.0 and oks["columns"]["AP75"] == 0.0
    capsys.readouterr()
    assert main(["eval", str(preds), "--sigmas", "0.1", "0.1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "poselit: error: OKS sigmas: expected 3 positive numbers for skeleton 'hands', got [0.1, 0.1]"
    )


def test_coco_format_eval_without_ignore_regions(tmp_path):
    """A COCO-format file with no crowd and no unlabelled person (no ignore regions at all)."""
    category = {"id": 1, "name": "hands", "keypoints": ["nose", "left_hand", "right_hand"], "skeleton": [[1, 2]],
                "sigmas": [0.05, 0.05, 0.05]}
    people = [{"id": n, "image_id": n, "category_id": 1, "iscrowd": 0, "area": 2500.0, "bbox": [0, 0, 50, 50],
               "keypoints": [10, 10, 2, 20, 30, 2, 30, 30, 2]} for n in range(2)]
    data = {"images": [{"id": n, "file_name": f"{n}.jpg"} for n in range(2)], "annotations": people, "categories": [category]}
    spec = f"coco@{write(tmp_path, data, 'hands.json')}"
    annotations = read_annotations(spec)
    assert not annotations.ignored
    truth = np.stack([r.keypoints for r in annotations.records]).astype(np.float64)
    preds = write(tmp_path, predictions_document(annotations, truth, dataset=spec, label="mine"))
    assert eval_cli([str(preds), "--json", str(tmp_path / "r.json")]) == 0
    oks = next(r for r in json.loads((tmp_path / "r.json").read_text())["results"] if r["metric"] == "OKS AP")
    assert oks["columns"]["AP"] == 100.0 and oks["counts"] == {"people": 2, "ignore regions": 0}


def test_sigmas_on_data_without_coco_areas_is_an_error(lsp_test, tmp_path):
    spec, annotations, truth = lsp_test
    path = write(tmp_path, predictions_document(annotations, truth, dataset=spec))
    with pytest.raises(ValueError, match="OKS sigmas apply to COCO-format data with 'area' only"):
        evaluate_predictions(path, sigmas=[0.1] * 14)
    assert all(r.metric != "OKS AP" for r in evaluate_predictions(path).results)
