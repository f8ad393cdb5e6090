"""PF-WILLOW (Ham et al., Proposal Flow, CVPR 2016): sub-class folders of images and .mat files.

    <root>/<sub-class>/<image>.png (or .jpg)
    <root>/<sub-class>/<image>.mat     pts_coord: 2 x K (row 0 x, row 1 y), the same K points
                                       in the same order across a sub-class

The published protocol evaluates every ordered pair (i, j), i != j, within a sub-class.
Coordinates are used as stored: checked against the images (the nearest Harris corner to each
of the 700 keypoints of the 7 shipped sub-classes lies -0.2 px in x and 0.0 px in y away on
average), they read as 0-based pixel coordinates; a 1-based reading would put every point one
pixel right of and below its feature.
"""

import os

import numpy as np
import scipy.io

from .pairs import PairDataset

__all__ = ["PFWillow"]

LAYOUT = (
    "PF-WILLOW layout: <root>/<sub-class>/<image>.png with <image>.mat holding pts_coord (2 x K)"
)


def read_points(path: str) -> np.ndarray:
    """K x 2 keypoints of a PF-WILLOW .mat file."""
    try:
        mat = scipy.io.loadmat(path)
    except Exception as e:
        raise ValueError(f"{path}: cannot read the .mat file ({e})") from None
    pts = mat.get("pts_coord")
    if pts is None or pts.ndim != 2 or pts.shape[0] != 2:
        raise ValueError(f"{path}: no 'pts_coord' keypoints (expected a 2 x K array)")
    return np.asarray(pts, np.float64).T


class PFWillow(PairDataset):
    name = "pf-willow"

    def __init__(self, root: str):
        if not os.path.isdir(root):
            raise FileNotFoundError(f"{root!r} is not a folder; expected the {LAYOUT}")
        records = []
        for sub in sorted(os.listdir(root)):
            folder = os.path.join(root, sub)
            if not os.path.isdir(folder):
                continue
            images = []
            for mat in sorted(f for f in os.listdir(folder) if f.endswith(".mat")):
                stem = os.path.join(folder, mat[:-4])
                image = next((stem + e for e in (".png", ".jpg") if os.path.isfile(stem + e)), None)
                if image is None:
                    raise FileNotFoundError(f"{stem}.mat has no image {stem}.png or .jpg")
                images.append((image, read_points(stem + ".mat")))
            for i, (src, src_kps) in enumerate(images):
                for j, (trg, trg_kps) in enumerate(images):
                    if i != j:
                        if len(src_kps) != len(trg_kps):
                            raise ValueError(f"{src} and {trg}: different keypoint counts")
                        records.append(
                            {
                                "src_path": src,
                                "trg_path": trg,
                                "src_kps": src_kps,
                                "trg_kps": trg_kps,
                                "trg_bbox": None,
                                "category": sub,
                                "name": f"{sub}/{os.path.basename(src)}-{os.path.basename(trg)}",
                            }
                        )
        if not records:
            raise FileNotFoundError(
                f"no annotated image pairs under {root!r}; expected the {LAYOUT}"
            )
        super().__init__(records)
