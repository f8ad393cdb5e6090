"""RotNet samples (Gidaris et al., ICLR 2018): every rotation of one crop, labelled by its index.

Multiples of 90 degrees are exact (flips and transposes, no interpolation); multiples of 45
(the paper's 8-rotation comparison) interpolate and fill the corners by reflection, the artefacts
the paper names as the reason 8 rotations do worse.
"""

import cv2
import numpy as np
import torch

from .datasets import sample_rng
from .pretext import PretextDataset, stack_views

__all__ = ["RotationDataset", "rotate"]


def rotate(image: np.ndarray, angle: float) -> np.ndarray:
    """``image`` (H x W x C) rotated counter-clockwise by ``angle`` degrees.

    Multiples of 90 are exact ``np.rot90`` (transpose and flip); other angles rotate about the
    centre with bilinear interpolation, keeping the size (square images).
    """
    if angle % 90 == 0:
        return np.ascontiguousarray(np.rot90(image, k=int(angle // 90) % 4))
    h, w = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    return cv2.warpAffine(
        image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )


class RotationDataset(PretextDataset):
    """All rotations of one random crop in the same sample (the paper found this better than one
    random rotation per image).

    Args:
        source, resize, crop_size, seed, flip_prob: see :class:`PretextDataset`.
        angles: rotations in degrees; the label of a rotated copy is its index here.
    """

    def __init__(self, source, *, angles=(0, 90, 180, 270), **kwargs):
        super().__init__(source, **kwargs)
        self.angles = [float(a) for a in angles]

    @classmethod
    def from_config(cls, cfg, source) -> "RotationDataset":
        return cls(source, angles=cfg.MODEL.ROTATION.ANGLES, **cls.base_kwargs(cfg))

    def __getitem__(self, key) -> dict:
        """Returns: "images": R x 3 x S x S uint8 (one per angle), "labels": R int64, "index",
        "num_bad"."""
        epoch, index = key
        rng = sample_rng(self.seed, epoch, index)
        bad = [0]
        index, crop = self.load_crop(index, rng, bad)
        return {
            "images": stack_views(rotate(crop, a) for a in self.angles),  # R x 3 x S x S
            "labels": torch.arange(len(self.angles)),  # R
            "index": index,
            "num_bad": bad[0],
        }
