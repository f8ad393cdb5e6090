"""A folder-per-class classification set of object crops from a COCO json (``tools/make_crops.py``).

Each non-crowd box at least ``min_size`` pixels on its shorter side is cut out with ``context``
of its size added on every side (clipped to the image), and saved as
``out/<split>/<category name>/<image id>_<annotation id>.jpg``. Whole images go to one split
(``val`` for a ``val_fraction`` of the image ids, drawn with ``seed``), so no object is seen in
both; categories with fewer than ``min_per_class`` crops in either split are left out.
"""

import json
import os
from collections import defaultdict

import cv2
import numpy as np

from .image_io import BadImageError, UnreadableDataError, read_image

__all__ = ["make_crops"]


def make_crops(
    json_file: str,
    out_dir: str,
    image_root: str = "",
    *,
    min_size: int = 32,
    context: float = 0.1,
    val_fraction: float = 0.25,
    min_per_class: int = 2,
    seed: int = 0,
) -> dict:
    """Write the crops; returns {"train": {class: n}, "val": {class: n}, "skipped_images": n}.

    ``out_dir`` is the caller's to check (``tools/make_crops.py`` refuses one that already holds
    ``train/`` or ``val/``).

    Raises:
        FileNotFoundError: no ``json_file``.
        ValueError: a json without images, annotations or categories, or no crop written (every
            image unreadable, or a wrong ``image_root``): an empty set is an error, not a result.
    """
    if not os.path.isfile(json_file):
        raise FileNotFoundError(f"COCO annotation file {json_file!r} does not exist")
    with open(json_file) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{json_file}: not valid json ({e})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data, dict) or not data.get(key):
            raise ValueError(f"{json_file}: expected a COCO json with a non-empty {key!r} list")
    root = image_root or os.path.dirname(os.path.abspath(json_file))
    names = {c["id"]: c["name"].replace("/", "_").replace(" ", "_") for c in data["categories"]}
    images = {im["id"]: im for im in data["images"]}
    ids = sorted(images)
    rng = np.random.default_rng(seed)
    val_ids = set(rng.choice(ids, int(round(val_fraction * len(ids))), replace=False).tolist())
    boxes = defaultdict(list)
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        if ann.get("iscrowd", 0) or min(w, h) < min_size:
            continue
        boxes[ann["image_id"]].append((ann["id"], ann["category_id"], x, y, w, h))
    plan = defaultdict(lambda: defaultdict(list))  # split -> class -> [(image id, box)]
    for image_id, anns in boxes.items():
        split = "val" if image_id in val_ids else "train"
        for ann in anns:
            plan[split][names[ann[1]]].append((image_id, ann))
    keep = {
        c
        for c in plan["train"]
        if len(plan["train"][c]) >= min_per_class and len(plan["val"].get(c, [])) >= min_per_class
    }
    counts = {"train": {}, "val": {}, "skipped_images": 0}
    first_error = None
    by_image = defaultdict(list)
    for split in ("train", "val"):
        for cls in sorted(keep):
            for image_id, ann in plan[split][cls]:
                by_image[image_id].append((split, cls, ann))
    for image_id, items in sorted(by_image.items()):
        path = os.path.join(root, images[image_id]["file_name"])
        try:
            image = read_image(path)
        except BadImageError as e:
            counts["skipped_images"] += 1
            first_error = first_error or e
            continue
        ih, iw = image.shape[:2]
        for split, cls, (ann_id, _, x, y, w, h) in items:
            x0, y0 = max(0, int(x - context * w)), max(0, int(y - context * h))
            x1, y1 = min(iw, int(np.ceil(x + w + context * w))), min(
                ih, int(np.ceil(y + h + context * h))
            )
            folder = os.path.join(out_dir, split, cls)
            os.makedirs(folder, exist_ok=True)
            crop = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2BGR)
            cv2.imwrite(
                os.path.join(folder, f"{image_id}_{ann_id}.jpg"),
                crop,
                [cv2.IMWRITE_JPEG_QUALITY, 95],
            )
            counts[split][cls] = counts[split].get(cls, 0) + 1
    if not counts["train"] and not counts["val"]:
        if first_error is not None:
            raise UnreadableDataError(
                f"{json_file}: no crop written: none of the {counts['skipped_images']} images "
                f"with boxes to crop could be read (e.g. {first_error}); check --image-root"
            )
        raise ValueError(
            f"{json_file}: no crop written: no category has {min_per_class} boxes of at least "
            f"{min_size} pixels in both splits; lower --min-size or --min-per-class"
        )
    return counts
