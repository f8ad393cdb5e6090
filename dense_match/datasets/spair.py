"""SPair-71k (Min et al., 2019) in its published layout.

    <root>/JPEGImages/<category>/<image>.jpg
    <root>/PairAnnotation/<split>/<pair id>:<category>.json

A pair JSON holds ``src_imname``, ``trg_imname``, ``category``, ``src_kps`` and ``trg_kps``
(K x 2 lists, corresponding rows), ``src_bndbox``/``trg_bndbox`` ([x1, y1, x2, y2]) and the
difficulty flags ``viewpoint_variation``, ``scale_variation``, ``truncation``, ``occlusion``
(kept in each record's ``difficulty``).
"""

import json
import os

import numpy as np

from .pairs import PairDataset, require_file

__all__ = ["SPair71k", "DIFFICULTY_FLAGS"]

DIFFICULTY_FLAGS = ("viewpoint_variation", "scale_variation", "truncation", "occlusion")
LAYOUT = (
    "SPair-71k layout: <root>/JPEGImages/<category>/*.jpg and <root>/PairAnnotation/<split>/*.json"
)


class SPair71k(PairDataset):
    """Args: root; split: "test", "val" or "trn"."""

    name = "spair-71k"

    def __init__(self, root: str, split: str = "test"):
        folder = os.path.join(root, "PairAnnotation", split)
        if not os.path.isdir(folder) or not os.path.isdir(os.path.join(root, "JPEGImages")):
            raise FileNotFoundError(f"{root!r}: no PairAnnotation/{split}/; expected the {LAYOUT}")
        records = []
        for name in sorted(f for f in os.listdir(folder) if f.endswith(".json")):
            path = os.path.join(folder, name)
            try:
                with open(path) as f:
                    ann = json.load(f)
                cat = ann["category"]
                src = np.asarray(ann["src_kps"], np.float64).reshape(-1, 2)
                trg = np.asarray(ann["trg_kps"], np.float64).reshape(-1, 2)
                bbox = [float(v) for v in ann["trg_bndbox"]]
                images = [
                    require_file(os.path.join(root, "JPEGImages", cat, ann[k]), path)
                    for k in ("src_imname", "trg_imname")
                ]
            except (KeyError, ValueError, TypeError) as e:
                raise ValueError(f"{path}: not a SPair-71k pair annotation ({e!r})") from None
            if src.shape != trg.shape:
                raise ValueError(f"{path}: {len(src)} source but {len(trg)} target keypoints")
            records.append(
                {
                    "src_path": images[0],
                    "trg_path": images[1],
                    "src_kps": src,
                    "trg_kps": trg,
                    "trg_bbox": bbox,
                    "category": cat,
                    "name": name[:-5],
                    "difficulty": {k: int(ann.get(k, 0)) for k in DIFFICULTY_FLAGS},
                }
            )
        if not records:
            raise FileNotFoundError(f"no pair annotations in {folder!r}; expected the {LAYOUT}")
        super().__init__(records)
