"""Detection datasets written in the real VOC and COCO formats load with the right annotations."""

import json
import logging
import os

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_util

from insloc.config import get_cfg
from insloc.data.detection import (
    VOC_CLASSES,
    build_detection_train_dataset,
    get_detection_dataset,
    load_coco_json,
    load_voc_instances,
    read_record_image,
    segmentation_to_polygons,
    training_records,
)
from insloc.data.synthetic import SyntheticScenes

# The shared real data sits beside the checkout (../shared), or beside a worktree's parent.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COCO128 = next(
    (
        p
        for p in (
            os.path.join(_ROOT, *up, "shared", "data", "coco128") for up in ([".."], ["..", ".."])
        )
        if os.path.isdir(p)
    ),
    "",
)


def _write_image(path, h, w, value=100):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((h, w, 3), value, np.uint8))


def _voc_object(name, box, difficult=0):
    x1, y1, x2, y2 = box
    return (
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{x1}</xmin>"
        f"<ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
    )


def write_voc(root, year, split, images):
    """images: {file_id: (h, w, [objects xml], write_jpeg)}."""
    base = os.path.join(root, f"VOC{year}")
    os.makedirs(os.path.join(base, "ImageSets", "Main"), exist_ok=True)
    os.makedirs(os.path.join(base, "Annotations"), exist_ok=True)
    with open(os.path.join(base, "ImageSets", "Main", f"{split}.txt"), "w") as f:
        f.write("\n".join(images) + "\n")
    for file_id, (h, w, objects, write_jpeg) in images.items():
        xml = (
            f"<annotation><filename>{file_id}.jpg</filename><size><width>{w}</width>"
            f"<height>{h}</height><depth>3</depth></size>{''.join(objects)}</annotation>"
        )
        with open(os.path.join(base, "Annotations", f"{file_id}.xml"), "w") as f:
            f.write(xml)
        if write_jpeg:
            _write_image(os.path.join(base, "JPEGImages", f"{file_id}.jpg"), h, w)
    return base


@pytest.fixture
def voc_root(tmp_path):
    write_voc(
        str(tmp_path),
        2007,
        "trainval",
        {
            "000001": (
                40,
                60,
                [
                    _voc_object("dog", (11, 6, 30, 25)),
                    _voc_object("person", (1, 1, 20, 40), difficult=1),
                    _voc_object("cat", (25, 5, 20, 30)),  # degenerate: dropped
                    _voc_object("car", (41, 11, 80, 30)),  # clipped to the width
                ],
                True,
            ),
            "000002": (50, 40, [_voc_object("person", (5, 5, 30, 45), difficult=1)], True),
            "000003": (40, 40, [_voc_object("dog", (1, 1, 10, 10))], False),  # JPEG absent
        },
    )
    return str(tmp_path)


def test_voc_records_and_bad_input(voc_root, monkeypatch, caplog):
    monkeypatch.setenv("INSLOC_DATASETS", voc_root)
    with caplog.at_level(logging.INFO, logger="insloc.data"):
        records, meta = get_detection_dataset("voc_2007_trainval", get_cfg())
    assert meta["thing_classes"] == list(VOC_CLASSES) and meta["evaluator"] == "voc"
    assert meta["year"] == 2007 and meta["dirname"] == os.path.join(voc_root, "VOC2007")
    assert [r["image_id"] for r in records] == ["000001", "000002"]  # 000003 has no JPEG
    r = records[0]
    assert (r["height"], r["width"]) == (40, 60)
    assert r["file_name"] == os.path.join(voc_root, "VOC2007", "JPEGImages", "000001.jpg")
    # detectron2's convention: xmin and ymin minus 1; the degenerate cat box is gone; the car box
    # is clipped to the image.
    assert [a["bbox"] for a in r["annotations"]] == [
        [10.0, 5.0, 30.0, 25.0],
        [0.0, 0.0, 20.0, 40.0],
        [40.0, 10.0, 60.0, 30.0],
    ]
    names = [VOC_CLASSES[a["category_id"]] for a in r["annotations"]]
    assert names == ["dog", "person", "car"]
    assert [a["difficult"] for a in r["annotations"]] == [0, 1, 0]
    log = caplog.text
    assert "1 degenerate boxes dropped" in log and "1 images absent on disk dropped" in log
    assert "1 boxes clipped" in log

    # Training drops difficult objects and then the image left without any.
    train = training_records(records, keep_difficult=False, filter_empty=True)
    assert [len(t["annotations"]) for t in train] == [2]
    train = training_records(records, keep_difficult=True, filter_empty=True)
    assert [len(t["annotations"]) for t in train] == [3, 1]


def test_voc_unknown_class_is_a_one_line_error(tmp_path):
    base = write_voc(
        str(tmp_path), 2007, "test", {"a": (20, 20, [_voc_object("unicorn", (1, 1, 5, 5))], True)}
    )
    with pytest.raises(ValueError) as e:
        load_voc_instances(base, "test", 2007)
    msg = str(e.value)
    assert "\n" not in msg and "a.xml" in msg and "'unicorn'" in msg


def test_dataset_root_from_environment(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    for root, h in ((first, 30), (second, 50)):
        write_voc(str(root), 2007, "test", {"x": (h, 20, [_voc_object("dog", (1, 1, 5, 5))], True)})
    monkeypatch.setenv("DETECTRON2_DATASETS", str(second))
    monkeypatch.setenv("INSLOC_DATASETS", str(first))
    assert get_detection_dataset("voc_2007_test", get_cfg())[0][0]["height"] == 30
    monkeypatch.delenv("INSLOC_DATASETS")
    assert get_detection_dataset("voc_2007_test", get_cfg())[0][0]["height"] == 50
    monkeypatch.delenv("DETECTRON2_DATASETS")
    monkeypatch.chdir(tmp_path)  # ./datasets, absent here
    with pytest.raises(FileNotFoundError) as e:
        get_detection_dataset("voc_2007_test", get_cfg())
    msg = str(e.value)
    assert "\n" not in msg and "datasets/VOC2007" in msg and "ImageSets/Main" in msg
    assert "INSLOC_DATASETS" in msg
    with pytest.raises(FileNotFoundError, match="instances_val2017.json"):
        get_detection_dataset("coco_2017_val", get_cfg())


def write_coco(root, corrupt=False):
    """A COCO json with a polygon, a crowd RLE, an image without annotations, a missing image."""
    images_dir = os.path.join(root, "images")
    _write_image(os.path.join(images_dir, "a.jpg"), 48, 64)
    _write_image(os.path.join(images_dir, "b.jpg"), 64, 32)
    crowd = np.zeros((48, 64), np.uint8, order="F")
    crowd[30:40, 5:25] = 1
    # Uncompressed RLE, as COCO stores crowd regions: column-major run lengths from 0s.
    flat = crowd.ravel(order="F")
    runs, value, n = [], 0, 0
    for v in flat:
        if v == value:
            n += 1
        else:
            runs.append(n)
            value, n = v, 1
    runs.append(n)
    data = {
        "info": {},
        "images": [
            {"id": 7, "file_name": "a.jpg", "height": 48, "width": 64},
            {"id": 3, "file_name": "b.jpg", "height": 64, "width": 32},
            {"id": 9, "file_name": "missing.jpg", "height": 10, "width": 10},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 18,
                "bbox": [10, 4, 20, 16],
                "area": 320,
                "iscrowd": 0,
                "segmentation": [[10, 4, 30, 4, 30, 20, 10, 20], [1, 1, 2]],
            },
            {
                "id": 2,
                "image_id": 7,
                "category_id": 1,
                "bbox": [5, 30, 20, 10],
                "area": 200,
                "iscrowd": 1,
                "segmentation": {"counts": runs, "size": [48, 64]},
            },
            {
                "id": 3,
                "image_id": 7,
                "category_id": 44,
                "bbox": [50, 0, 30, 10],  # reaches past the right edge: clipped to 64
                "area": 300,
                "iscrowd": 0,
                "segmentation": [[50, 0, 63, 0, 63, 10, 50, 10]],
            },
            {"id": 4, "image_id": 9, "category_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 0},
        ],
        "categories": [
            {"id": 44, "name": "bottle"},
            {"id": 1, "name": "person"},
            {"id": 18, "name": "dog"},
        ],
    }
    path = os.path.join(root, "annotations", "instances.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(data, f)
    return path, images_dir, crowd


def test_coco_records(tmp_path, caplog):
    json_file, images_dir, crowd = write_coco(str(tmp_path))
    with caplog.at_level(logging.INFO, logger="insloc.data"):
        records, meta = get_detection_dataset(f"{json_file}:{images_dir}", get_cfg())
    assert meta["thing_classes"] == ["person", "dog", "bottle"]  # by sorted category id
    assert meta["thing_dataset_id_to_contiguous_id"] == {1: 0, 18: 1, 44: 2}
    assert meta["evaluator"] == "coco" and meta["json_file"] == os.path.abspath(json_file)
    assert [r["image_id"] for r in records] == [3, 7]  # by id; missing.jpg dropped
    assert records[0]["annotations"] == []
    a = records[1]["annotations"]
    assert [x["bbox"] for x in a] == [
        [10.0, 4.0, 30.0, 20.0],
        [5.0, 30.0, 25.0, 40.0],
        [50.0, 0.0, 64.0, 10.0],
    ]
    assert [x["category_id"] for x in a] == [1, 0, 2]
    assert [x["iscrowd"] for x in a] == [0, 1, 0]
    assert a[0]["segmentation"] == [[10, 4, 30, 4, 30, 20, 10, 20]]  # the 3-coordinate one dropped
    rle = mask_util.frPyObjects(a[1]["segmentation"], 48, 64)
    assert np.array_equal(mask_util.decode(rle), crowd)
    assert "1 images absent on disk dropped" in caplog.text
    assert "1 boxes clipped" in caplog.text

    # Training: crowd regions go, then the image left without annotations (a config key).
    train = training_records(records, keep_difficult=False, filter_empty=True)
    assert [r["image_id"] for r in train] == [7] and len(train[0]["annotations"]) == 2
    kept = training_records(records, keep_difficult=False, filter_empty=False)
    assert [r["image_id"] for r in kept] == [3, 7]


def test_coco_json_by_path_defaults_to_image_root_or_json_folder(tmp_path):
    json_file, images_dir, _ = write_coco(str(tmp_path))
    cfg = get_cfg()
    cfg.DATASETS.IMAGE_ROOT = images_dir
    assert len(get_detection_dataset(json_file, cfg)[0]) == 2
    cfg.DATASETS.IMAGE_ROOT = ""  # the json's folder holds no images
    assert len(get_detection_dataset(json_file, cfg)[0]) == 0


@pytest.mark.parametrize(
    "data, missing",
    [
        ({"images": [{"id": 1, "file_name": "a.jpg", "height": 2, "width": 2}]}, "'annotations'"),
        ([1, 2], "top level"),
        (
            {
                "images": [{"id": 1, "file_name": "a.jpg", "width": 2}],
                "annotations": [],
                "categories": [{"id": 1, "name": "x"}],
            },
            "images[0] lacks 'height'",
        ),
    ],
)
def test_json_that_is_not_coco_is_a_one_line_error(tmp_path, data, missing):
    path = str(tmp_path / "bad.json")
    with open(path, "w") as f:
        json.dump(data, f)
    with pytest.raises(ValueError) as e:
        load_coco_json(path, str(tmp_path))
    assert path in str(e.value) and missing in str(e.value) and "\n" not in str(e.value)


def test_synthetic_datasets(tmp_path):
    cfg = get_cfg()
    cfg.DATASETS.SYNTHETIC.NUM_IMAGES = 4
    cfg.DATASETS.SYNTHETIC.NUM_TEST_IMAGES = 3
    cfg.DATASETS.SYNTHETIC.IMAGE_SIZE = 64
    train, meta = get_detection_dataset("synthetic_train", cfg)
    test, _ = get_detection_dataset("synthetic_test", cfg)
    assert len(train) == 4 and len(test) == 3 and meta["evaluator"] == "coco"
    assert train[0]["file_name"] == "synthetic:0" and train[0]["height"] == 64

    # Train and test scenes differ (disjoint seeds).
    assert not np.array_equal(read_record_image(train[0]), read_record_image(test[0]))
    scene = SyntheticScenes(4, 64, seed=cfg.DATASETS.SYNTHETIC.SEED)[1]
    assert np.array_equal(read_record_image(train[1]), scene["image"])
    for ann, box, mask, label in zip(
        train[1]["annotations"], scene["boxes"], scene["masks"], scene["labels"]
    ):
        assert ann["bbox"] == box.tolist() and ann["category_id"] == label
        # The polygons drawn back cover the mask (they run through boundary pixel centres).
        rle = mask_util.merge(mask_util.frPyObjects(ann["segmentation"], 64, 64))
        drawn = mask_util.decode(rle).astype(bool)
        iou = (drawn & mask).sum() / (drawn | mask).sum()
        assert iou > 0.75, iou


def test_training_set_concatenates_and_checks_classes(tmp_path, voc_root, monkeypatch):
    monkeypatch.setenv("INSLOC_DATASETS", voc_root)
    json_file, images_dir, _ = write_coco(str(tmp_path))
    cfg = get_cfg()
    cfg.DATASETS.TRAIN = ("voc_2007_trainval", f"{json_file}:{images_dir}")
    with pytest.raises(ValueError, match="same classes"):
        build_detection_train_dataset(cfg)


@pytest.mark.skipif(not COCO128, reason="shared coco128 data absent")
def test_coco128_counts():
    json_file = os.path.join(COCO128, "annotations", "instances_train2017.json")
    records, meta = load_coco_json(json_file, os.path.join(COCO128, "train2017"))
    annotations = [a for r in records for a in r["annotations"]]
    assert len(records) == 128 and len(annotations) == 939
    assert sum(a["iscrowd"] for a in annotations) == 10
    assert all(isinstance(a["segmentation"], dict) for a in annotations if a["iscrowd"])
    assert len({a["category_id"] for a in annotations}) == 71 and len(meta["thing_classes"]) == 80


def test_rle_segmentation_becomes_polygons():
    mask = np.zeros((20, 30), np.uint8, order="F")
    mask[5:15, 8:20] = 1
    compressed = mask_util.encode(mask)
    compressed["counts"] = compressed["counts"].decode()  # as json stores it
    # Vertices at the centres of the boundary pixels (detectron2's mask-to-polygon convention).
    expected = [[8.5, 5.5, 8.5, 14.5, 19.5, 14.5, 19.5, 5.5]]
    assert segmentation_to_polygons(compressed) == expected
    polygons = [[1.0, 2.0, 5.0, 2.0, 5.0, 7.0]]
    assert segmentation_to_polygons(polygons) is polygons
