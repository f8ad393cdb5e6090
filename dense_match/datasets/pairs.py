"""What every matching benchmark yields: a pair of images with corresponding keypoints.

A pair (``PairDataset[i]``) is a dict::

    {"src_image": H x W x 3 uint8 RGB, "trg_image": H' x W' x 3 uint8,
     "src_kps": K x 2 float64 (x, y; NaN where missing), "trg_kps": K x 2 (same order),
     "trg_bbox": [x1, y1, x2, y2] or None, "category": str, "name": str,
     "difficulty": {flag: int} (SPair-71k only)}

in original-image pixels (0-based pixel centres). Records are listed at construction (every file
checked); images are decoded in ``__getitem__``.
"""

import os

import numpy as np

from insloc.data.image_io import BadImageError, read_image

__all__ = ["BadImageError", "PairDataset", "hflip_points", "require_file"]


class PairDataset:
    """A list of pair records plus image decoding. ``name`` is the key of ``DEFAULT_PROTOCOL``."""

    name = ""

    def __init__(self, records: list):
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> dict:
        r = dict(self.records[i])
        flip = r.pop("flip", False)
        # read_image raises BadImageError naming the file; the evaluator skips and counts it
        r["src_image"] = read_image(r.pop("src_path"))
        r["trg_image"] = read_image(r.pop("trg_path"))
        if flip:
            # A flipped pair mirrors both images and their annotations.
            r["src_kps"] = hflip_points(r["src_kps"], r["src_image"].shape[1])
            r["trg_kps"] = hflip_points(r["trg_kps"], r["trg_image"].shape[1])
            r["src_image"] = np.ascontiguousarray(r["src_image"][:, ::-1])
            r["trg_image"] = np.ascontiguousarray(r["trg_image"][:, ::-1])
            if r.get("trg_bbox") is not None:
                w = r["trg_image"].shape[1]
                x1, y1, x2, y2 = r["trg_bbox"]
                r["trg_bbox"] = [w - 1 - x2, y1, w - 1 - x1, y2]
        return r


def hflip_points(kps: np.ndarray, width: int) -> np.ndarray:
    out = np.array(kps, np.float64)
    out[:, 0] = width - 1 - out[:, 0]
    return out


def require_file(path: str, what: str) -> str:
    """``path`` if it is a file, else a FileNotFoundError naming it and what refers to it."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} names {path!r}, which does not exist")
    return path
