"""Run under torchrun by test_eval_inference.py: each rank evaluates its half of 4 images.

torchrun --nproc_per_node 2 tests/dist_eval_worker.py OUT_DIR
"""

import json
import os
import sys

import torch

from insloc.engine.launch import launch
from insloc.evaluation import PascalVOCDetectionEvaluator, inference_on_dataset
from insloc.utils import comm


class GroundTruthDetector(torch.nn.Module):
    """Detects exactly the ground-truth boxes of each image."""

    def __init__(self, records):
        super().__init__()
        self.boxes = {r["image_id"]: [a["bbox"] for a in r["annotations"]] for r in records}

    def forward(self, samples):
        return [
            {
                "boxes": torch.tensor(self.boxes[s["image_id"]]).reshape(-1, 4),
                "scores": torch.full((len(self.boxes[s["image_id"]]),), 0.9),
                "classes": torch.zeros(len(self.boxes[s["image_id"]]), dtype=torch.int64),
            }
            for s in samples
        ]


def main(out_dir):
    records = [
        {"file_name": f"{i}.jpg", "image_id": i, "height": 50, "width": 60,
         "annotations": [{"bbox": [2.0 + i, 3.0, 30.0, 40.0], "category_id": 0, "difficult": 0}]}
        for i in range(4)
    ]  # fmt: skip
    rank = comm.get_rank()
    shard = [[{"image": torch.zeros(3, 4, 4), **r}] for r in records[2 * rank : 2 * rank + 2]]
    meta = {"thing_classes": ["thing"], "year": 2007, "evaluator": "voc"}
    evaluator = PascalVOCDetectionEvaluator("voc", records, meta, output_dir=out_dir)
    result = inference_on_dataset(GroundTruthDetector(records), shard, evaluator, "cpu")
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    launch(main, sys.argv[1], device="cpu")
