"""The PF-PASCAL, PF-WILLOW and SPair-71k loaders on tiny fixtures written in the real formats."""

import csv
import json
import os

import cv2
import numpy as np
import pytest
import scipy.io

from dense_match.datasets import PFPascal, PFWillow, SPair71k
from dense_match.datasets.build import build_matching_dataset
from dense_match.evaluate import evaluate_matching, resolve_protocol
from dense_match.features import DenseFeatures
from dense_match.model import DenseModel
from insloc.config import load_config
from insloc.modeling.backbone import build_resnet

from .conftest import ROOT

DENSE_EVAL = os.path.join(ROOT, "configs", "quick", "dense_eval_tiny.yaml")


def _image(path, h=40, w=60):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((h, w, 3), 128, np.uint8))


def _pascal(root, with_kps_in_csv=True, flip=0):
    jpeg = root / "JPEGImages"
    for name in ("2008_000001", "2008_000002"):
        _image(str(jpeg / f"{name}.jpg"))
    ann = root / "Annotations" / "car"
    ann.mkdir(parents=True)
    kps_a = np.array([[5.0, 6.0], [np.nan, np.nan], [30.0, 20.0]])
    kps_b = np.array([[10.0, 12.0], [15.0, 16.0], [50.0, 30.0]])
    scipy.io.savemat(str(ann / "2008_000001.mat"), {"kps": kps_a, "bbox": [[1, 2, 40, 30]]})
    scipy.io.savemat(str(ann / "2008_000002.mat"), {"kps": kps_b, "bbox": [[4, 5, 55, 35]]})
    path = root / "pairs.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        src, trg = "PF-dataset-PASCAL/JPEGImages/2008_000001.jpg", "x/2008_000002.jpg"
        if with_kps_in_csv:
            w.writerow(["source_image", "target_image", "class", "XA", "YA", "XB", "YB"])
            w.writerow([src, trg, 7, "5;30", "6;20", "10;50", "12;30"])  # 7 = car
        else:
            w.writerow(["source_image", "target_image", "class", "flip"])
            w.writerow([src, trg, 7, flip])
    return str(path)


def test_pf_pascal_csv_keypoints_and_mat_box(tmp_path):
    ds = PFPascal(str(tmp_path), _pascal(tmp_path))
    assert len(ds) == 1
    pair = ds[0]
    assert pair["category"] == "car" and pair["src_image"].shape == (40, 60, 3)
    np.testing.assert_allclose(pair["src_kps"], [[5, 6], [30, 20]])
    np.testing.assert_allclose(pair["trg_kps"], [[10, 12], [50, 30]])
    assert pair["trg_bbox"] == [4, 5, 55, 35]


@pytest.mark.parametrize("flip", [0, 1])
def test_pf_pascal_mat_keypoints_and_flip(tmp_path, flip):
    ds = PFPascal(str(tmp_path), _pascal(tmp_path, with_kps_in_csv=False, flip=flip))
    pair = ds[0]
    src = np.array([[5.0, 6.0], [np.nan, np.nan], [30.0, 20.0]])
    trg = np.array([[10.0, 12.0], [15.0, 16.0], [50.0, 30.0]])
    bbox = [4, 5, 55, 35]
    if flip:  # both images mirrored: x -> w - 1 - x (w = 60)
        src[:, 0], trg[:, 0] = 59 - src[:, 0], 59 - trg[:, 0]
        bbox = [59 - 55, 5, 59 - 4, 35]
    np.testing.assert_allclose(pair["src_kps"], src)  # NaN stays: excluded by PCK
    np.testing.assert_allclose(pair["trg_kps"], trg)
    assert pair["trg_bbox"] == bbox


def test_pf_pascal_bad_input(tmp_path):
    csv_path = _pascal(tmp_path, with_kps_in_csv=False)
    os.remove(tmp_path / "JPEGImages" / "2008_000002.jpg")
    with pytest.raises(FileNotFoundError, match="2008_000002.jpg"):
        PFPascal(str(tmp_path), csv_path)
    _image(str(tmp_path / "JPEGImages" / "2008_000002.jpg"))
    scipy.io.savemat(str(tmp_path / "Annotations" / "car" / "2008_000001.mat"), {"bbox": [[1]]})
    with pytest.raises(ValueError, match="2008_000001.mat.*kps"):
        PFPascal(str(tmp_path), csv_path)
    with pytest.raises(FileNotFoundError, match="JPEGImages"):
        PFPascal(str(tmp_path / "nowhere"))


def test_pf_willow_all_ordered_pairs(tmp_path):
    for sub, n in (("car(G)", 3), ("duck(S)", 2)):
        for i in range(n):
            _image(str(tmp_path / sub / f"im{i}.png"))
            pts = np.array([[1.0 + i, 2.0, 3.0], [4.0, 5.0 + i, 6.0]])  # 2 x K: row x, row y
            scipy.io.savemat(str(tmp_path / sub / f"im{i}.mat"), {"pts_coord": pts})
    ds = PFWillow(str(tmp_path))
    assert len(ds) == 3 * 2 + 2 * 1
    pair = ds[0]
    assert pair["category"] == "car(G)" and pair["trg_bbox"] is None
    np.testing.assert_allclose(pair["src_kps"], [[1, 4], [2, 5], [3, 6]])
    np.testing.assert_allclose(pair["trg_kps"], [[2, 4], [2, 6], [3, 6]])
    scipy.io.savemat(str(tmp_path / "duck(S)" / "im1.mat"), {"other": [[1]]})
    with pytest.raises(ValueError, match="im1.mat.*pts_coord"):
        PFWillow(str(tmp_path))


def test_spair_pairs_and_difficulty(tmp_path):
    for name in ("a.jpg", "b.jpg"):
        _image(str(tmp_path / "JPEGImages" / "cat" / name))
    folder = tmp_path / "PairAnnotation" / "test"
    folder.mkdir(parents=True)
    ann = {
        "src_imname": "a.jpg", "trg_imname": "b.jpg", "category": "cat",
        "src_kps": [[1, 2], [3, 4]], "trg_kps": [[5, 6], [7, 8]],
        "src_bndbox": [0, 0, 20, 20], "trg_bndbox": [2, 3, 30, 25],
        "viewpoint_variation": 1, "scale_variation": 2, "truncation": 0, "occlusion": 1,
    }  # fmt: skip
    (folder / "000001-a-b:cat.json").write_text(json.dumps(ann))
    cfg = load_config(DENSE_EVAL, ["DATASETS.TEST", str(tmp_path)])
    ds = build_matching_dataset(cfg)
    assert isinstance(ds, SPair71k) and len(ds) == 1
    pair = ds[0]
    np.testing.assert_allclose(pair["trg_kps"], [[5, 6], [7, 8]])
    assert pair["trg_bbox"] == [2, 3, 30, 25]
    assert pair["difficulty"] == {
        "viewpoint_variation": 1, "scale_variation": 2, "truncation": 0, "occlusion": 1
    }  # fmt: skip
    # evaluated under SPair's protocol, with a PCK per difficulty flag value
    model = DenseModel(DenseFeatures(build_resnet(50, 8, "BN", out_features=["res3"])))
    result = evaluate_matching(model, ds, resolve_protocol(cfg, ds.name), side=32)
    assert (result["norm"], result["average"]) == ("bbox", "per_image")
    assert set(result["per_difficulty"]) == {
        "viewpoint_variation=1", "scale_variation=2", "truncation=0", "occlusion=1"
    }  # fmt: skip
    assert result["per_difficulty"]["occlusion=1"]["pck@0.1"] == result["pck@0.1"]


def test_unknown_folder_names_the_layouts(tmp_path):
    cfg = load_config(DENSE_EVAL, ["DATASETS.TEST", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="PF-PASCAL.*SPair-71k.*PF-WILLOW.*warp:"):
        build_matching_dataset(cfg)
