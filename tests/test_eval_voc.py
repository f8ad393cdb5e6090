"""PascalVOCDetectionEvaluator on hand-made detections whose AP is worked out by hand."""

import json

import numpy as np
import pytest
import torch

from insloc.evaluation import PascalVOCDetectionEvaluator
from insloc.evaluation.detection.voc import round_like_text, voc_eval_class

CLASSES = ["cat", "dog"]


def record(image_id, boxes, classes=None, difficult=None):
    """A VOC record from XML-style boxes (1-based inclusive), stored as the loader does (-1)."""
    classes = classes or [0] * len(boxes)
    difficult = difficult or [0] * len(boxes)
    return {
        "file_name": f"{image_id}.jpg",
        "image_id": image_id,
        "height": 100,
        "width": 100,
        "annotations": [
            {
                "bbox": [x1 - 1.0, y1 - 1.0, float(x2), float(y2)],
                "category_id": c,
                "iscrowd": 0,
                "difficult": d,
            }
            for (x1, y1, x2, y2), c, d in zip(boxes, classes, difficult)
        ],
    }


def evaluate(records, detections, year=2007, output_dir=None):
    """detections: {image_id: [(box in record coordinates, score, class), ...]}."""
    meta = {"thing_classes": CLASSES, "year": year, "evaluator": "voc"}
    evaluator = PascalVOCDetectionEvaluator("voc_test", records, meta, output_dir=output_dir)
    evaluator.reset()
    for rec in records:
        dets = detections.get(rec["image_id"], [])
        output = {
            "boxes": torch.tensor([d[0] for d in dets], dtype=torch.float32).reshape(-1, 4),
            "scores": torch.tensor([d[1] for d in dets], dtype=torch.float32),
            "classes": torch.tensor([d[2] for d in dets], dtype=torch.int64),
        }
        sample = {"image_id": rec["image_id"], "height": 100, "width": 100}
        evaluator.process([sample], [output])
    return evaluator.evaluate()["bbox"]


def as_detected(rec, score=0.9):
    return [(a["bbox"], score, a["category_id"]) for a in rec["annotations"]]


@pytest.mark.parametrize("year", [2007, 2012])
def test_perfect_detections_give_100_at_every_threshold(year):
    records = [
        record("a", [(10, 10, 40, 50), (50, 20, 90, 60)], [0, 1]),
        record("b", [(5, 5, 30, 30)], [1], [0]),
        record("c", [(1, 1, 100, 100)], [0]),
    ]
    result = evaluate(records, {r["image_id"]: as_detected(r) for r in records}, year)
    for key in ("AP", "AP50", "AP75", "AP-cat", "AP50-cat", "AP-dog", "AP50-dog"):
        assert result[key] == pytest.approx(100.0), key


def known_case():
    """2 cats; 3 detections: a hit (0.9), a miss (0.8), a box at IoU 0.6 with the second cat (0.7).

    Under the +1 convention the second cat is 10 x 10 (XML 10..19) and the third detection covers
    XML 10..19 x 10..15 (10 x 6): IoU = 60 / 100 = 0.6, a match at 0.50 and 0.55 but not at 0.60
    (the test is ``IoU > threshold``).
    """
    records = [record("a", [(20, 20, 60, 60)]), record("b", [(10, 10, 19, 19)])]
    detections = {
        "a": [([19.0, 19.0, 60.0, 60.0], 0.9, 0), ([70.0, 70.0, 90.0, 90.0], 0.8, 0)],
        "b": [([9.0, 9.0, 19.0, 15.0], 0.7, 0)],
    }
    return records, detections


def test_known_11_point_case():
    records, detections = known_case()
    result = evaluate(records, detections, year=2007)
    # IoU 0.50, 0.55: TP, FP, TP -> recall .5 .5 1, precision 1 .5 2/3;
    # 11-point: 1 at recall 0..0.5 (6 points), 2/3 at 0.6..1 (5 points).
    matched = (6 * 1.0 + 5 * 2 / 3) / 11
    # IoU 0.60..0.95: TP, FP, FP -> recall stays .5: 1 at 6 points, 0 at 5.
    unmatched = 6 / 11
    assert result["AP50-cat"] == pytest.approx(100 * matched)
    assert result["AP-cat"] == pytest.approx(100 * (2 * matched + 8 * unmatched) / 10)
    # "dog" has no box and no detection: AP 0, and the means are over both classes
    assert result["AP-dog"] == 0.0
    assert result["AP50"] == pytest.approx(100 * matched / 2)
    assert result["AP75"] == pytest.approx(100 * unmatched / 2)
    assert result["AP"] == pytest.approx(100 * (2 * matched + 8 * unmatched) / 20)


def test_known_case_precision_recall_points_and_area_metric():
    records, detections = known_case()
    result = evaluate(records, detections, year=2012)
    # area under the envelope: recall 0->.5 at precision 1, .5->1 at precision 2/3
    assert result["AP50-cat"] == pytest.approx(100 * (0.5 * 1 + 0.5 * 2 / 3))
    gt = {
        "box": np.array([[20.0, 20.0, 60.0, 60.0], [10.0, 10.0, 19.0, 19.0]]),
        "difficult": np.zeros(2, dtype=bool),
        "image": np.array([0, 1]),
        "npos": 2,
    }
    dets = {
        "image": np.array([1, 0, 0]),  # given out of rank order: the evaluator ranks by score
        "score": np.array([0.7, 0.9, 0.8]),
        "box": np.array([[10.0, 10.0, 19.0, 15.0], [20.0, 20.0, 60.0, 60.0], [71, 71, 90, 90.0]]),
    }
    ((rec, prec, ap),) = voc_eval_class(dets, gt, [0.5], use_07_metric=True)
    np.testing.assert_allclose(rec, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(prec, [1.0, 0.5, 2 / 3])
    assert ap == pytest.approx((6 + 5 * 2 / 3) / 11)


def test_recall_point_0_3_is_the_float_of_np_arange():
    """VOC07 samples recall at np.arange(0, 1.1, 0.1): its 0.3 is above 3/10, as in detectron2."""
    gt = {
        "box": np.tile([[1.0, 1.0, 10.0, 10.0]], (10, 1)),
        "difficult": np.zeros(10, dtype=bool),
        "image": np.arange(10),
        "npos": 10,
    }
    dets = {"image": np.arange(3), "score": np.ones(3), "box": np.tile(gt["box"][:1], (3, 1))}
    ((_, _, ap),) = voc_eval_class(dets, gt, [0.5], use_07_metric=True)
    assert ap == pytest.approx(3 / 11)  # recall 0.3 reaches 0, 0.1, 0.2 only


def test_difficult_objects_are_neither_counted_nor_penalised():
    rec = record("a", [(10, 10, 40, 40), (60, 60, 90, 90)], difficult=[0, 1])
    easy, hard = rec["annotations"][0]["bbox"], rec["annotations"][1]["bbox"]
    # a detection on the difficult box, ranked first, is not a false positive
    assert evaluate([rec], {"a": [(hard, 0.95, 0), (easy, 0.9, 0)]})["AP-cat"] == pytest.approx(
        100.0
    )
    # nor a true positive: 2 easy boxes + 1 difficult; ranked: difficult, hit, miss. Ignored, the
    # curve is recall .5 at precision 1 (AP 6/11); a TP would give 100, an FP 3/11, counting the
    # difficult box among the positives 4/11.
    two = record("a", [(10, 10, 40, 40), (45, 5, 55, 15), (60, 60, 90, 90)], difficult=[0, 0, 1])
    dets = [(hard, 0.95, 0), (easy, 0.9, 0), ([0.0, 70.0, 9.0, 99.0], 0.85, 0)]
    assert evaluate([two], {"a": dets})["AP-cat"] == pytest.approx(100 * 6 / 11)
    # missing the difficult box does not lower recall
    assert evaluate([rec], {"a": [(easy, 0.9, 0)]})["AP-cat"] == pytest.approx(100.0)
    # the same detections with the box not difficult: now it is missed and lowers AP
    plain = record("a", [(10, 10, 40, 40), (60, 60, 90, 90)])
    assert evaluate([plain], {"a": [(easy, 0.9, 0)]})["AP-cat"] < 100.0


def test_duplicates_are_false_positives():
    records, _ = known_case()
    first, second = (r["annotations"][0]["bbox"] for r in records)
    dup = evaluate(records, {"a": [(first, 0.9, 0), (first, 0.8, 0)], "b": [(second, 0.7, 0)]})
    # ranked TP, FP (the duplicate), TP: the 11-point AP of the known case at every threshold
    assert dup["AP-cat"] == pytest.approx(100 * (6 + 5 * 2 / 3) / 11)
    # the duplicate ranked last costs nothing: the precision at full recall is already reached
    late = evaluate(records, {"a": [(first, 0.9, 0), (first, 0.6, 0)], "b": [(second, 0.7, 0)]})
    assert late["AP-cat"] == pytest.approx(100.0)


def test_plus_one_pixel_convention():
    """A prediction equal to the record box is exact; the raw XML box is 1 px off at high IoU."""
    rec = record("a", [(10, 10, 19, 19)])  # XML 10..19: 10 x 10 pixels
    exact = evaluate([rec], {"a": as_detected(rec)})
    assert exact["AP-cat"] == pytest.approx(100.0)
    # predicting the XML numbers (forgetting the loader's -1): 9 x 9 of 10 x 10 -> IoU 0.81,
    # a match at thresholds 0.50..0.80 only (7 of 10)
    off = evaluate([rec], {"a": [([10.0, 10.0, 19.0, 19.0], 0.9, 0)]})
    assert off["AP50-cat"] == pytest.approx(100.0)
    assert off["AP-cat"] == pytest.approx(70.0)


def test_results_json_and_bad_input(tmp_path):
    records, detections = known_case()
    evaluate(records, detections, output_dir=str(tmp_path))
    results = json.loads((tmp_path / "coco_instances_results.json").read_text())
    assert len(results) == 3
    top = next(r for r in results if r["score"] == pytest.approx(0.9))
    assert top["image_id"] == "a" and top["category_id"] == 1  # contiguous 0 -> 1
    assert top["bbox"] == pytest.approx([19.0, 19.0, 41.0, 41.0])  # XYWH
    with pytest.raises(ValueError, match="not in the dataset"):
        evaluate_unknown_image(records)
    with pytest.raises(ValueError, match="year"):
        PascalVOCDetectionEvaluator("x", records, {"thing_classes": CLASSES})


def evaluate_unknown_image(records):
    evaluator = PascalVOCDetectionEvaluator("x", records, {"thing_classes": CLASSES, "year": 2007})
    evaluator.reset()
    output = {
        "boxes": torch.zeros(1, 4),
        "scores": torch.ones(1),
        "classes": torch.zeros(1, dtype=torch.int64),
    }
    evaluator.process([{"image_id": "zzz", "height": 100, "width": 100}], [output])
    return evaluator.evaluate()


def test_rounding_is_that_of_detectron2s_text_lines():
    """Scores and boxes are scored as detectron2 writes them (3 and 1 decimals), ties included."""
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.random(2000), [0.0625, 0.1875, 0.0005, 0.9995, 1.0]])
    scores = scores.astype(np.float32)
    boxes = np.concatenate([rng.uniform(-5, 2000, 2000), [0.25, 0.75, 10.25, 1.05, 2.35]])
    boxes = boxes.astype(np.float32)
    assert round_like_text(scores, 3).tolist() == [float(f"{v:.3f}") for v in scores.tolist()]
    assert round_like_text(boxes, 1).tolist() == [float(f"{v:.1f}") for v in boxes.tolist()]
    # two scores equal once rounded are tied, as in detectron2's files
    assert round_like_text(np.float32([0.12341, 0.12339]), 3).tolist() == [0.123, 0.123]
