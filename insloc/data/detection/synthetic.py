"""insloc's synthetic scenes as a detection dataset, masks converted to polygons.

A record names its scene as ``file_name = "synthetic:<i>"`` and carries the generator's arguments
under ``"synthetic"``, so the image can be rendered again anywhere from the record alone.
"""

import json
import os

import cv2
import numpy as np

from ..synthetic import CLASS_NAMES, SyntheticScenes
from .masks import mask_to_polygons

__all__ = ["TEST_SEED_OFFSET", "load_synthetic", "render_synthetic", "write_synthetic_coco"]

# synthetic_test scenes use seed SEED + this, far from the seeds of synthetic_train (SEED), of
# pretraining (SEED) and of pretraining's held-out scenes (SEED + 1_000_003).
TEST_SEED_OFFSET = 2_000_003


def render_synthetic(spec: dict) -> np.ndarray:
    """The H x W x 3 uint8 RGB image of the scene a record's ``"synthetic"`` entry names."""
    scenes = SyntheticScenes(spec["num_images"], spec["image_size"], seed=spec["seed"])
    return scenes[spec["index"]]["image"]


def load_synthetic(num_images: int, image_size: int, seed: int):
    """Records of ``num_images`` scenes of side ``image_size`` drawn with ``seed``.

    Returns:
        (records, metadata); classes are insloc.data.synthetic.CLASS_NAMES, boxes the scenes' own
        (tight boxes of the visible masks), segmentations the masks' polygons.
    """
    scenes = SyntheticScenes(num_images, image_size, seed=seed)
    records = []
    for i in range(num_images):
        scene = scenes[i]
        annotations = [
            {
                "bbox": [float(v) for v in box],
                "category_id": int(label),
                "iscrowd": 0,
                "segmentation": mask_to_polygons(mask),
            }
            for box, label, mask in zip(scene["boxes"], scene["labels"], scene["masks"])
        ]
        records.append(
            {
                "file_name": f"synthetic:{i}",
                "image_id": i,
                "height": image_size,
                "width": image_size,
                "annotations": annotations,
                "synthetic": {
                    "num_images": num_images,
                    "image_size": image_size,
                    "seed": seed,
                    "index": i,
                },
            }
        )
    metadata = {
        "thing_classes": list(CLASS_NAMES),
        "evaluator": "coco",
        "json_file": None,
        "thing_dataset_id_to_contiguous_id": {i: i for i in range(len(CLASS_NAMES))},
    }
    return records, metadata


def write_synthetic_coco(out_dir: str, num_images: int, image_size: int, seed: int) -> str:
    """Write scenes as a COCO dataset (``out_dir/images/<i>.png`` and ``out_dir/instances.json``
    with boxes, polygons and the shape classes), for the tools that read files: object crops for
    linear probes (``tools/make_crops.py``), or any COCO reader.

    Returns:
        the json's path. ``out_dir`` must not exist (nothing is overwritten).
    """
    os.makedirs(os.path.join(out_dir, "images"))
    records, metadata = load_synthetic(num_images, image_size, seed)
    images, annotations = [], []
    for r in records:
        file_name = f"images/{r['image_id']:06d}.png"  # relative to the json's folder
        image = render_synthetic(r["synthetic"])
        cv2.imwrite(os.path.join(out_dir, file_name), image[:, :, ::-1])
        images.append(
            {"id": r["image_id"], "file_name": file_name, "height": image_size, "width": image_size}
        )
        for a in r["annotations"]:
            x1, y1, x2, y2 = a["bbox"]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": r["image_id"],
                    "category_id": a["category_id"] + 1,  # COCO ids start at 1
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                    "segmentation": a["segmentation"],
                }
            )
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(metadata["thing_classes"])]
    path = os.path.join(out_dir, "instances.json")
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f)
    return path
