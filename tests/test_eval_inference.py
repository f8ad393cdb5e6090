"""inference_on_dataset, the gather it relies on, the results table/json and build_evaluator."""

import json
import logging
import math
import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from insloc.config import get_cfg
from insloc.engine.launch import launch
from insloc.evaluation import (
    COCOEvaluator,
    PascalVOCDetectionEvaluator,
    build_evaluator,
    format_results_table,
    inference_on_dataset,
    print_results_table,
    save_results_json,
)
from insloc.utils import comm


class FixedDetector(nn.Module):
    """Returns, for each image, its ground-truth boxes of ``records`` as detections."""

    def __init__(self, records):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.boxes = {r["image_id"]: [a["bbox"] for a in r["annotations"]] for r in records}
        self.calls = []

    def forward(self, samples):
        self.calls.append((self.training, torch.is_grad_enabled(), samples[0]["image"].device))
        outputs = []
        for s in samples:
            boxes = torch.tensor(self.boxes[s["image_id"]], dtype=torch.float32).reshape(-1, 4)
            outputs.append(
                {
                    "boxes": boxes * self.scale,
                    "scores": torch.full((len(boxes),), 0.9),
                    "classes": torch.zeros(len(boxes), dtype=torch.int64),
                }
            )
        return outputs


def voc_records(n=4):
    return [
        {
            "file_name": f"{i}.jpg",
            "image_id": f"im{i}",
            "height": 50,
            "width": 60,
            "annotations": [
                {"bbox": [2.0 + i, 3.0, 30.0 + i, 40.0], "category_id": 0, "difficult": 0}
            ],
        }
        for i in range(n)
    ]


def test_inference_on_dataset_runs_in_eval_mode_and_restores_training_mode(tmp_path):
    records = voc_records()
    model = FixedDetector(records).train()
    loader = [
        [{"image": torch.zeros(3, 8, 8, dtype=torch.uint8), **r} for r in records[i : i + 2]]
        for i in (0, 2)
    ]
    meta = {"thing_classes": ["thing"], "year": 2007, "evaluator": "voc"}
    evaluator = PascalVOCDetectionEvaluator("voc", records, meta, output_dir=str(tmp_path))
    result = inference_on_dataset(model, loader, evaluator, "cpu")
    assert result["bbox"]["AP"] == pytest.approx(100.0)
    assert model.training
    assert model.calls == [(False, False, torch.device("cpu"))] * 2
    assert os.path.isfile(tmp_path / "coco_instances_results.json")
    # a second evaluation starts afresh (reset): half the images, half the recall
    assert inference_on_dataset(model, loader[:1], evaluator, "cpu")["bbox"]["AP"] < 100.0
    # the mode is restored after an error too, and an eval-mode model stays in eval mode
    with pytest.raises(KeyError):
        bad = [[{"image": torch.zeros(1), "image_id": "??"}]]
        inference_on_dataset(model, bad, evaluator, "cpu")
    assert model.training
    inference_on_dataset(model.eval(), loader, evaluator, "cpu")
    assert not model.training


def test_all_gather_object_in_one_process():
    obj = {"a": [1, 2], "b": "x"}
    assert comm.all_gather_object(obj) == [obj]


def _evaluate_part(rank, port, out_dir):
    """One of 2 forked processes: run the ground-truth detector on this rank's share of 4 images."""
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )  # fmt: skip
    torch.set_num_threads(1)  # no OpenMP pool in a forked child
    launch(_evaluate_shard, out_dir, device="cpu")


def _evaluate_shard(out_dir):
    records, rank = voc_records(), comm.get_rank()
    # shards of unequal length, and image 0 on both ranks (as a padding sampler would repeat it)
    part = records[:3] if rank == 0 else records[3:] + records[:1]
    shard = [[{"image": torch.zeros(3, 4, 4), **r}] for r in part]
    meta = {"thing_classes": ["thing"], "year": 2007, "evaluator": "voc"}
    evaluator = PascalVOCDetectionEvaluator("voc", records, meta, output_dir=out_dir)
    result = inference_on_dataset(FixedDetector(records), shard, evaluator, "cpu")
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


def test_gather_across_two_processes(tmp_path):
    """Each rank sees part of the images; only the gathered set gives AP 100, on rank 0 alone."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # fork: the children reuse this process's imports (spawn would re-import torch twice)
    mp.start_processes(_evaluate_part, (port, str(tmp_path)), nprocs=2, start_method="fork")
    rank0 = json.loads((tmp_path / "rank0.json").read_text())
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    assert rank0["bbox"]["AP"] == pytest.approx(100.0) and rank1 == {}
    assert len(json.loads((tmp_path / "coco_instances_results.json").read_text())) == 4


def test_results_table_and_json(tmp_path, caplog):
    results = {
        "voc_2007_test": {"bbox": {"AP": 50.0, "AP50": 80.0, "AP75": 40.0, "AP-cat": 60.0,
                                   "AP50-cat": 90.0, "AP-dog": 40.0, "AP50-dog": 70.0}},
        "coco": {"bbox": {"AP": 1.0, "APl": float("nan"), "AP-a": float("nan")}},
    }  # fmt: skip
    table = format_results_table("voc_2007_test", "bbox", results["voc_2007_test"]["bbox"])
    assert "cat" in table and "90.000" in table and "copypaste: AP,AP50,AP75" in table
    log = logging.getLogger("test_eval_table")
    with caplog.at_level(logging.INFO, logger="test_eval_table"):
        print_results_table("voc_2007_test", results["voc_2007_test"], log)
    assert table in caplog.text
    path = tmp_path / "out" / "results.json"
    save_results_json(results, str(path))
    loaded = json.loads(path.read_text())  # strict json: NaN written as null
    assert loaded["voc_2007_test"]["bbox"]["AP50-dog"] == 70.0
    assert loaded["coco"]["bbox"]["APl"] is None
    assert not math.isnan(loaded["coco"]["bbox"]["AP"])


def test_build_evaluator_chooses_by_metadata(tmp_path):
    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    records = voc_records(1)
    voc = build_evaluator(cfg, "v", {"thing_classes": ["a"], "year": 2012, "evaluator": "voc"},
                          records=records)  # fmt: skip
    assert isinstance(voc, PascalVOCDetectionEvaluator) and not voc.use_07_metric
    assert voc.output_dir == os.path.join(str(tmp_path), "inference", "v")
    coco = build_evaluator(cfg, "c", {"thing_classes": ["a"], "evaluator": "coco"}, "d", records)
    assert isinstance(coco, COCOEvaluator) and coco.output_dir == "d"
    with pytest.raises(ValueError, match="evaluator"):
        build_evaluator(cfg, "x", {"thing_classes": ["a"], "evaluator": "lvis"}, records=records)


def test_build_evaluator_finds_the_ground_truth_by_name(tmp_path):
    """Without records, VOC and in-memory COCO load them from the dataset catalog by name."""
    pytest.importorskip("insloc.data.detection")
    from insloc.data.detection import get_detection_dataset

    cfg = get_cfg()
    cfg.OUTPUT_DIR = str(tmp_path)
    cfg.DATASETS.SYNTHETIC.NUM_TEST_IMAGES = 4
    records, metadata = get_detection_dataset("synthetic_test", cfg)
    evaluator = build_evaluator(cfg, "synthetic_test", metadata)
    assert len(evaluator.coco_gt.getImgIds()) == len(records) == 4
