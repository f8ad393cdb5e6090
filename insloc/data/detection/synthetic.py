"""insloc's synthetic scenes as a detection dataset, masks converted to polygons.

A record names its scene as ``file_name = "synthetic:<i>"`` and carries the generator's arguments
under ``"synthetic"``, so the image can be rendered again anywhere from the record alone.
"""

import numpy as np

from ..synthetic import CLASS_NAMES, SyntheticScenes
from .masks import mask_to_polygons

__all__ = ["TEST_SEED_OFFSET", "load_synthetic", "render_synthetic"]

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
