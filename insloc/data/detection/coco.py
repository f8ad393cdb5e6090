"""COCO-format instance annotations: any json with ``images``, ``annotations`` and ``categories``.

Parsed with pycocotools, as detectron2's loader does: category ids are mapped to contiguous ids in
the order of the sorted ids (the mapping is kept in the metadata for the evaluator), boxes go from
COCO's XYWH to XYXY, polygons with fewer than 3 points are dropped (an instance left with none is
dropped and counted), and RLE segmentations (crowd regions, mostly) are kept as they are.
"""

import contextlib
import io
import json
import os

from pycocotools.coco import COCO

from .annotations import LoadCounts, clip_box

__all__ = ["load_coco_json"]

_REQUIRED = {
    "images": ("id", "file_name", "height", "width"),
    "annotations": ("image_id", "category_id", "bbox"),
    "categories": ("id", "name"),
}


def _check_coco(data, json_file: str) -> None:
    """Raise a one-line ValueError naming what makes ``data`` not a COCO instances json."""
    if not isinstance(data, dict):
        raise ValueError(f"{json_file}: not a COCO json (top level is not an object)")
    for key, fields in _REQUIRED.items():
        entries = data.get(key)
        if not isinstance(entries, list):
            raise ValueError(f"{json_file}: not a COCO instances json: missing the {key!r} list")
        for i, entry in enumerate(entries):
            missing = [f for f in fields if not isinstance(entry, dict) or f not in entry]
            if missing:
                raise ValueError(
                    f"{json_file}: not a COCO instances json: {key}[{i}] lacks "
                    f"{', '.join(repr(m) for m in missing)}"
                )
    if not data["images"]:
        raise ValueError(f"{json_file}: the 'images' list is empty")
    if not data["categories"]:
        raise ValueError(f"{json_file}: the 'categories' list is empty")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _segmentation(segm):
    """Valid polygons of a list segmentation (None when none is left), or an RLE dict as it is."""
    if isinstance(segm, dict):
        return segm if "counts" in segm and "size" in segm else None
    polygons = [[float(v) for v in p] for p in segm if len(p) % 2 == 0 and len(p) >= 6]
    return polygons or None


def load_coco_json(json_file: str, image_root: str, name: str = ""):
    """Records of a COCO-format json.

    Args:
        json_file: the annotation file.
        image_root: the folder ``images[*].file_name`` is relative to.
        name: the dataset's name, for the log.
    Returns:
        (records, metadata): images in the order of their ids; every annotation kept with
        ``iscrowd`` 0/1 (training drops crowd regions), ``segmentation`` polygons or RLE when given.
    Raises:
        FileNotFoundError: ``json_file`` does not exist.
        ValueError: it is not json, or not COCO (the message names what is missing), or an
            annotation names an unknown image or category.
    """
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"COCO annotation file {json_file} not found")
    with open(json_file) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{json_file}: not valid json ({e})") from None
    _check_coco(data, json_file)
    api = COCO()
    api.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        api.createIndex()

    cat_ids = sorted(api.getCatIds())
    id_map = {c: i for i, c in enumerate(cat_ids)}
    thing_classes = [api.cats[c]["name"] for c in cat_ids]
    for ann in data["annotations"]:
        if ann["category_id"] not in id_map:
            raise ValueError(
                f"{json_file}: annotation {ann.get('id', '?')} has category_id "
                f"{ann['category_id']}, which 'categories' does not define"
            )
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(map(_is_number, bbox)):
            raise ValueError(
                f"{json_file}: annotation {ann.get('id', '?')} has bbox {bbox!r}, expected "
                f"[x, y, width, height] numbers"
            )
        if ann["image_id"] not in api.imgs:
            raise ValueError(
                f"{json_file}: annotation {ann.get('id', '?')} refers to image_id "
                f"{ann['image_id']}, which 'images' does not define"
            )

    counts = LoadCounts()
    records = []
    for image_id in sorted(api.imgs):
        image = api.imgs[image_id]
        file_name = os.path.join(image_root, image["file_name"])
        if not os.path.isfile(file_name):
            counts.add_missing_image(file_name)
            continue
        height, width = int(image["height"]), int(image["width"])
        annotations = []
        for ann in api.imgToAnns.get(image_id, []):
            x, y, w, h = (float(v) for v in ann["bbox"])
            box, outcome = clip_box([x, y, x + w, y + h], height, width)
            counts.add(outcome)
            if box is None:
                continue
            out = {
                "bbox": box,
                "category_id": id_map[ann["category_id"]],
                "iscrowd": int(ann.get("iscrowd", 0)),
            }
            if "segmentation" in ann:
                segm = _segmentation(ann["segmentation"])
                if segm is None:
                    counts.add("bad_segmentation")
                    continue
                out["segmentation"] = segm
            annotations.append(out)
        records.append(
            {
                "file_name": file_name,
                "image_id": image_id,
                "height": height,
                "width": width,
                "annotations": annotations,
            }
        )
    counts.log(name or json_file, records)
    metadata = {
        "thing_classes": thing_classes,
        "evaluator": "coco",
        "json_file": os.path.abspath(json_file),
        "image_root": image_root,
        "thing_dataset_id_to_contiguous_id": id_map,
        "missing_images": counts.missing_images,
    }
    return records, metadata
