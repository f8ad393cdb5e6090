"""Results that used to be quietly wrong: skipped images counted, empty outputs refused, random
features seeded, pairs accounted for, VOC scored against the boxes as the XML states them."""

import json
import os
import subprocess
import sys

import pytest

from .conftest import ROOT
from .fake_data import write_coco, write_image, write_voc_2007_test
from .test_output_dir import tool_main

DENSE = "configs/quick/dense_introspection_tiny.yaml"
DENSE_EVAL = os.path.join(ROOT, "configs/quick/dense_eval_tiny.yaml")


def test_train_dense_counts_and_lists_skipped_images(tool, tmp_path):
    images = tmp_path / "images"
    for i in range(6):
        write_image(images / f"good_{i}.png", seed=i)
    broken = sorted(str(images / f"broken_{i}.jpg") for i in range(2))
    for name in broken:
        open(name, "w").write("not an image")
    out = tmp_path / "run"
    proc = tool(
        "tools/train_dense.py", "--config-file", DENSE, "OUTPUT_DIR", out,
        "DATASETS.DENSE_TRAIN", images, "SOLVER.MAX_ITER", 3, check=True,
    )  # fmt: skip
    assert (out / "bad_images.txt").read_text().splitlines() == broken
    rows = [json.loads(line) for line in (out / "metrics.jsonl").open()]
    assert rows[-1]["num_bad_images"] == 2
    assert "skipped 2 unreadable image files" in proc.stdout
    log = (out / "log.txt").read_text()
    assert all(log.count(f"skipping unreadable image: {name}") == 1 for name in broken)
    assert "skipping" not in proc.stderr  # in the run's log, not loose on stderr


def test_make_crops_with_a_wrong_image_root_is_an_error(tmp_path, capsys):
    json_file = write_coco(str(tmp_path / "data"), n=8, size=(80, 100))
    out = tmp_path / "crops"
    args = [json_file, str(out), "--image-root", str(tmp_path / "nowhere"), "--min-size", "8"]
    assert tool_main("make_crops")(args + ["--min-per-class", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no crop written" in err[0] and "nowhere" in err[0]
    assert not (out / "train").exists()


def test_eval_matching_with_random_features_is_seeded_and_counts_its_pairs(tmp_path, capsys):
    images = tmp_path / "images"
    write_image(images / "a.png", 96, 96, seed=1)
    (images / "b.png").write_text("not an image")
    results = []
    for run in ("one", "two"):
        args = ["--config-file", DENSE_EVAL, "OUTPUT_DIR", str(tmp_path / run)]
        args += ["DATASETS.TEST", f"('warp:{images}',)", "MATCHING.WARP_PAIRS", "4"]
        assert tool_main("eval_matching")(args) == 0
        results.append(json.loads((tmp_path / run / "pck.json").read_text()))
    capsys.readouterr()
    assert results[0] == results[1]  # the same command, the same random features, the same PCK
    assert results[0]["seed"] == 0
    # pair i is image i mod 2: the two pairs of the unreadable image are skipped, and counted
    assert (results[0]["pairs"], results[0]["pairs_skipped"]) == (2, 2)


_FIXED_DETECTOR = """
import sys, runpy, json, torch
from torch import nn
import insloc.engine.finetune as finetune

class Fixed(nn.Module):
    # detections given per image, in insloc's pixel convention (XML xmin - 1, ymin - 1)
    def __init__(self, boxes):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(()))
        self.boxes = boxes
    def forward(self, samples):
        out = []
        for s in samples:
            b = torch.tensor(self.boxes[str(s["image_id"])], dtype=torch.float32).reshape(-1, 5)
            out.append({"boxes": b[:, 1:], "scores": torch.full((len(b),), 0.9),
                        "classes": b[:, 0].long()})
        return out

boxes = json.loads(sys.argv[1])
finetune.build_model = lambda cfg: Fixed(boxes)
sys.argv = ["tools/train_net.py"] + sys.argv[2:]
runpy.run_path("tools/train_net.py", run_name="__main__")
"""


def test_voc_is_scored_against_the_boxes_as_the_xml_states_them(tmp_path):
    # Exported data: a box past the image's right border, a box starting at 0.
    objects = {
        "000001": (60, 80, [("dog", 50, 10, 120, 40)]),
        "000002": (60, 80, [("cat", 0, 0, 30, 20)]),
    }
    write_voc_2007_test(str(tmp_path), objects)
    dog, cat = 11, 7  # VOC_CLASSES indices
    # detections exactly on the XML's boxes: AP 100 when scored as the devkit scores
    detections = {
        "000001": [[dog, 49.0, 9.0, 120.0, 40.0]],
        "000002": [[cat, -1.0, -1.0, 30.0, 20.0]],
    }
    out = tmp_path / "out"
    args = ["--config-file", "configs/quick/det_tiny_C4.yaml", "--eval-only", "OUTPUT_DIR"]
    args += [str(out), "MODEL.ROI_HEADS.NUM_CLASSES", "20", "DATASETS.TEST", "('voc_2007_test',)"]
    env = dict(os.environ, INSLOC_DATASETS=str(tmp_path), PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", _FIXED_DETECTOR, json.dumps(detections), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    bbox = json.loads((out / "results.json").read_text())["voc_2007_test"]["bbox"]
    assert bbox["AP-dog"] == pytest.approx(100.0) and bbox["AP-cat"] == pytest.approx(100.0)
