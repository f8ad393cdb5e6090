"""COCOEvaluator: pycocotools box and mask AP on tiny datasets, and the results file it writes."""

import json
import logging

import numpy as np
import pycocotools.mask as mask_util
import pytest
import torch
from pycocotools.coco import COCO

from insloc.evaluation import COCOEvaluator

H, W = 64, 80


def square(x1, y1, size):
    """A square annotation with its polygon (record format, contiguous class filled in later)."""
    x2, y2 = x1 + size, y1 + size
    return {
        "bbox": [float(x1), float(y1), float(x2), float(y2)],
        "iscrowd": 0,
        "segmentation": [[x1, y1, x2, y1, x2, y2, x1, y2]],
    }


def tiny_records():
    """3 images, 2 classes; boxes of various sizes (small and medium)."""
    layout = {
        1: [(5, 5, 20, 0), (40, 10, 30, 1)],
        2: [(10, 20, 40, 1)],
        3: [(2, 2, 10, 0), (30, 30, 25, 0), (60, 5, 12, 1)],
    }
    records = []
    for image_id, objs in layout.items():
        anns = [dict(square(x, y, s), category_id=c) for x, y, s, c in objs]
        records.append(
            {"file_name": f"synthetic:{image_id}", "image_id": image_id, "height": H, "width": W,
             "annotations": anns}  # fmt: skip
        )
    return records


def polygon_mask(polygons):
    rle = mask_util.merge(mask_util.frPyObjects(polygons, H, W))
    return mask_util.decode(rle).astype(bool)  # H x W


def perfect_outputs(records, with_masks=True, shift=0.0):
    outputs = []
    for rec in records:
        anns = [a for a in rec["annotations"] if not a["iscrowd"]]
        out = {
            "boxes": torch.tensor([a["bbox"] for a in anns], dtype=torch.float32).reshape(-1, 4)
            + torch.tensor([shift, 0.0, shift, 0.0]),
            "scores": torch.linspace(0.9, 0.5, len(anns)),
            "classes": torch.tensor([a["category_id"] for a in anns], dtype=torch.int64),
        }
        if with_masks:
            out["masks"] = torch.from_numpy(
                np.stack([polygon_mask(a["segmentation"]) for a in anns]).reshape(-1, H, W)
            )
        outputs.append(out)
    return outputs


def run(evaluator, records, outputs):
    evaluator.reset()
    for rec, out in zip(records, outputs):
        sample = {"image_id": rec["image_id"], "height": rec["height"], "width": rec["width"]}
        evaluator.process([sample], [out])
    return evaluator.evaluate()


META = {"thing_classes": ["circle", "square"], "evaluator": "coco", "json_file": None}


def test_perfect_boxes_and_masks_give_100(tmp_path):
    records = tiny_records()
    evaluator = COCOEvaluator("tiny", META, records=records, output_dir=str(tmp_path))
    result = run(evaluator, records, perfect_outputs(records))
    assert set(result) == {"bbox", "segm"}
    for task in ("bbox", "segm"):
        for key in ("AP", "AP50", "AP75", "APs", "APm", "AP-circle", "AP-square"):
            assert result[task][key] == pytest.approx(100.0), (task, key)
        assert np.isnan(result[task]["APl"])  # no large object: undefined, as in pycocotools


def test_every_image_of_the_ground_truth_is_scored(caplog):
    # As detectron2 scores every image of its json: the objects of an image not run are misses.
    records = tiny_records()
    evaluator = COCOEvaluator("tiny", META, records=records)
    with caplog.at_level(logging.WARNING, logger="insloc.evaluation"):
        result = run(evaluator, records[:2], perfect_outputs(records[:2], with_masks=False))
    assert result["bbox"]["AP50"] < 100.0  # 3 of the 6 objects were never detected
    assert "2 of the 3 images of the ground truth were run" in caplog.text


def test_shifted_box_lowers_ap75_but_not_ap50():
    records = tiny_records()
    evaluator = COCOEvaluator("tiny", META, records=records)
    # The 40 px box of image 2 moved right by 8 px: IoU 32 / 48 = 0.67 (others barely move it).
    outputs = perfect_outputs(records, with_masks=False)
    outputs[1]["boxes"][:, [0, 2]] += 8.0
    result = run(evaluator, records, outputs)
    assert set(result) == {"bbox"}
    assert result["bbox"]["AP50"] == pytest.approx(100.0)
    assert result["bbox"]["AP75"] < 100.0
    assert result["bbox"]["AP-circle"] == pytest.approx(100.0)  # the shifted box is a square
    assert result["bbox"]["AP-square"] < 100.0


def test_results_json_is_valid_coco_results(tmp_path):
    records = tiny_records()
    evaluator = COCOEvaluator("tiny", META, records=records, output_dir=str(tmp_path))
    run(evaluator, records, perfect_outputs(records))
    path = tmp_path / "coco_instances_results.json"
    results = json.loads(path.read_text())
    assert len(results) == 6
    first = results[0]
    assert first["image_id"] == 1 and first["category_id"] == 1  # contiguous 0 -> id 1
    assert first["bbox"] == pytest.approx([5.0, 5.0, 20.0, 20.0])  # XYWH, original pixels
    assert isinstance(first["segmentation"]["counts"], str)
    gt = COCO()
    gt.dataset = {
        "images": [{"id": r["image_id"], "height": H, "width": W} for r in records],
        "annotations": [],
        "categories": [{"id": 1, "name": "circle"}, {"id": 2, "name": "square"}],
    }
    gt.createIndex()
    dt = gt.loadRes(str(path))
    assert len(dt.getAnnIds()) == 6
    mask = mask_util.decode(dt.loadAnns(dt.getAnnIds(imgIds=[1]))[0]["segmentation"])
    assert mask.shape == (H, W) and mask.sum() == polygon_mask(records[0]["annotations"][0][
        "segmentation"]).sum()  # fmt: skip


def test_numpy_image_ids_are_written_as_ints(tmp_path):
    records = tiny_records()
    for rec in records:
        rec["image_id"] = np.int64(rec["image_id"])
    evaluator = COCOEvaluator("tiny", META, records=records, output_dir=str(tmp_path))
    assert run(evaluator, records, perfect_outputs(records))["bbox"]["AP"] == pytest.approx(100.0)
    results = json.loads((tmp_path / "coco_instances_results.json").read_text())
    assert sorted({r["image_id"] for r in results}) == [1, 2, 3]


def test_json_file_with_non_contiguous_category_ids(tmp_path):
    """Dataset ids 3 and 7 are contiguous 0 and 1; predicting 0 for a box of id 3 is correct."""
    coco_json = {
        "images": [{"id": 10, "file_name": "a.jpg", "height": H, "width": W}],
        "annotations": [
            {"id": 1, "image_id": 10, "category_id": 7, "bbox": [4, 4, 30, 30], "area": 900,
             "iscrowd": 0},
            {"id": 2, "image_id": 10, "category_id": 3, "bbox": [40, 20, 20, 20], "area": 400,
             "iscrowd": 0},
        ],
        "categories": [{"id": 3, "name": "three"}, {"id": 7, "name": "seven"}],
    }  # fmt: skip
    json_file = tmp_path / "instances.json"
    json_file.write_text(json.dumps(coco_json))
    meta = {
        "thing_classes": ["three", "seven"],
        "evaluator": "coco",
        "json_file": str(json_file),
        "thing_dataset_id_to_contiguous_id": {3: 0, 7: 1},
    }
    out_dir = tmp_path / "inference"
    evaluator = COCOEvaluator("custom", meta, output_dir=str(out_dir))
    output = {
        "boxes": torch.tensor([[4.0, 4.0, 34.0, 34.0], [40.0, 20.0, 60.0, 40.0]]),
        "scores": torch.tensor([0.9, 0.8]),
        "classes": torch.tensor([1, 0]),  # seven, three
    }
    evaluator.reset()
    evaluator.process([{"image_id": 10, "height": H, "width": W}], [output])
    result = evaluator.evaluate()["bbox"]
    assert result["AP"] == pytest.approx(100.0)
    assert result["AP-three"] == pytest.approx(100.0) and result["AP-seven"] == pytest.approx(100.0)
    written = json.loads((out_dir / "coco_instances_results.json").read_text())
    assert [r["category_id"] for r in written] == [7, 3]
    # the classes swapped: both detections are wrong
    evaluator.reset()
    evaluator.process(
        [{"image_id": 10, "height": H, "width": W}], [dict(output, classes=torch.tensor([0, 1]))]
    )
    assert evaluator.evaluate()["bbox"]["AP"] == pytest.approx(0.0)


def test_crowd_regions_are_kept_and_not_penalised():
    records = tiny_records()
    crowd = dict(square(45, 40, 15), category_id=0, iscrowd=1)
    records[1]["annotations"].append(crowd)
    evaluator = COCOEvaluator("tiny", META, records=records)
    assert len(evaluator.coco_gt.getAnnIds(iscrowd=True)) == 1
    outputs = perfect_outputs(records, with_masks=False)
    # a detection on the crowd region, ranked above everything: ignored, AP stays 100
    on_crowd = torch.tensor([crowd["bbox"]], dtype=torch.float32)
    outputs[1] = {
        "boxes": torch.cat([on_crowd, outputs[1]["boxes"]]),
        "scores": torch.cat([torch.tensor([0.99]), outputs[1]["scores"]]),
        "classes": torch.cat([torch.tensor([0]), outputs[1]["classes"]]),
    }
    assert run(evaluator, records, outputs)["bbox"]["AP"] == pytest.approx(100.0)


def test_empty_predictions_give_zero_and_a_warning(tmp_path, caplog):
    records = tiny_records()
    evaluator = COCOEvaluator("tiny", META, records=records, output_dir=str(tmp_path))
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0), "classes": torch.zeros(0).long()}
    logging.getLogger("insloc").propagate = True  # setup_logger may have turned it off
    with caplog.at_level(logging.WARNING, logger="insloc.evaluation"):
        result = run(evaluator, records, [empty] * len(records))
    assert result["bbox"]["AP"] == 0.0 and result["bbox"]["AP-square"] == 0.0
    assert "no detection" in caplog.text
    assert json.loads((tmp_path / "coco_instances_results.json").read_text()) == []


def test_bad_input_is_a_clear_error(tmp_path):
    records = tiny_records()
    with pytest.raises(FileNotFoundError, match="json_file"):
        COCOEvaluator("x", dict(META, json_file=str(tmp_path / "missing.json")))
    with pytest.raises(ValueError, match="json_file"):
        COCOEvaluator("x", META)  # no json and no records
    evaluator = COCOEvaluator("x", META, records=records)
    bad = perfect_outputs(records[:1], with_masks=False)[0]
    bad["classes"][0] = 5
    with pytest.raises(ValueError, match="expected 0..1"):
        run(evaluator, records[:1], [bad])
