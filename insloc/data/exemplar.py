"""Exemplar-CNN samples (Dosovitskiy et al., NeurIPS 2014): surrogate classes made of transformed
copies of one seed patch each.

Class ``c`` is a seed square of image ``c`` of the source, placed where the image gradient is large
(drawn with probability proportional to the mean squared gradient magnitude of the window, as in
the paper). Its position is fixed for the run (a function of (seed, c), not of the epoch); every
access draws ``copies`` new compositions of translation, scale, rotation, contrast (saturation
and value raised to a power) and hue shift.
"""

import math

import cv2
import numpy as np
import torch

from .datasets import sample_rng
from .pretext import PretextDataset, stack_views

__all__ = ["ExemplarDataset", "seed_window"]


def seed_window(image: np.ndarray, size: int, rng: np.random.Generator) -> tuple:
    """Top-left (y, x) of a ``size`` square drawn with probability proportional to its mean
    squared gradient magnitude (uniform where the image is flat). Args: image: H x W x 3 uint8."""
    gray = image.astype(np.float32).mean(axis=2)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    energy = cv2.boxFilter(gx * gx + gy * gy, -1, (size, size), anchor=(0, 0), normalize=True)
    h, w = image.shape[:2]
    energy = energy[: h - size + 1, : w - size + 1].astype(np.float64)  # window top-lefts
    total = energy.sum()
    p = energy.ravel() / total if total > 0 else None
    flat = int(rng.choice(energy.size, p=p))
    return divmod(flat, energy.shape[1])


def _recolour(patch: np.ndarray, s_power: float, v_power: float, hue_shift: float) -> np.ndarray:
    """Saturation and value raised to powers, hue rotated by ``hue_shift`` turns."""
    hsv = cv2.cvtColor(patch.astype(np.float32) / 255.0, cv2.COLOR_RGB2HSV)  # H in degrees
    hsv[..., 0] = (hsv[..., 0] + 360.0 * hue_shift) % 360.0
    hsv[..., 1] = hsv[..., 1] ** s_power
    hsv[..., 2] = hsv[..., 2] ** v_power
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


class ExemplarDataset(PretextDataset):
    """Transformed copies of the seed patch of surrogate class ``index``.

    Args:
        source, resize, crop_size, seed, flip_prob: see :class:`PretextDataset` (the seed patch is
            taken from a random crop of the image).
        num_classes: surrogate classes; class c comes from image c (at most ``len(source)``).
        patch_size: side of the network's input patches (32).
        seed_size: side of the seed square in the crop.
        copies: transformed copies per sample.
        translate: largest shift, as a fraction of ``seed_size``.
        scale: (low, high) zoom of a copy (log-uniform).
        rotate: largest rotation in degrees (+-).
        contrast_power: (low, high) of the powers of saturation and value (log-uniform).
        hue: largest hue shift in turns (+-).
    """

    def __init__(
        self,
        source,
        *,
        num_classes: int,
        patch_size: int = 32,
        seed_size: int = 32,
        copies: int = 8,
        translate: float = 0.2,
        scale=(0.7, 1.4),
        rotate: float = 20.0,
        contrast_power=(0.25, 4.0),
        hue: float = 0.1,
        **kwargs,
    ):
        super().__init__(source, **kwargs)
        if num_classes > len(source):
            raise ValueError(
                f"{num_classes} surrogate classes need as many images; the source has {len(source)}"
            )
        if seed_size > self.crop_size:
            raise ValueError(f"seed_size {seed_size} exceeds crop_size {self.crop_size}")
        self.num_classes = num_classes
        self.patch_size = patch_size
        self.seed_size = seed_size
        self.copies = copies
        self.translate = translate
        self.scale = tuple(scale)
        self.rotate = rotate
        self.contrast_power = tuple(contrast_power)
        self.hue = hue

    @classmethod
    def from_config(cls, cfg, source) -> "ExemplarDataset":
        e = cfg.INPUT.EXEMPLAR
        return cls(
            source,
            num_classes=cfg.MODEL.EXEMPLAR.NUM_CLASSES,
            patch_size=e.PATCH_SIZE,
            seed_size=e.SEED_SIZE,
            copies=e.COPIES,
            translate=e.TRANSLATE,
            scale=e.SCALE,
            rotate=e.ROTATE,
            contrast_power=e.CONTRAST_POWER,
            hue=e.HUE,
            **cls.base_kwargs(cfg),
        )

    def __len__(self) -> int:
        return self.num_classes

    def seed_of(self, index: int):
        """The seed of class ``index``: (crop S x S x 3 uint8, (y, x) top-left of the seed square,
        number of unreadable files met). The same in every epoch and process."""
        rng = np.random.Generator(
            np.random.PCG64(np.random.SeedSequence([self.seed, index], spawn_key=(1,)))
        )
        bad = [0]
        _, crop = self.load_crop(index, rng, bad)
        return crop, seed_window(crop, self.seed_size, rng), bad[0]

    def seed_patch(self, index: int) -> np.ndarray:
        """The untransformed seed of class ``index`` at the patch size (P x P x 3 uint8)."""
        crop, (y, x), _ = self.seed_of(index)
        patch = crop[y : y + self.seed_size, x : x + self.seed_size]
        return cv2.resize(patch, (self.patch_size, self.patch_size), interpolation=cv2.INTER_AREA)

    def transform(self, crop: np.ndarray, top_left, rng: np.random.Generator) -> np.ndarray:
        """One transformed copy of the seed at ``top_left`` of ``crop``: P x P x 3 uint8."""
        p, s = self.patch_size, self.seed_size
        zoom = math.exp(rng.uniform(*np.log(self.scale)))
        angle = math.radians(rng.uniform(-self.rotate, self.rotate))
        shift = rng.uniform(-self.translate, self.translate, size=2) * s
        k = s / p / zoom  # crop pixels per patch pixel
        a, b = k * math.cos(angle), k * math.sin(angle)
        cy, cx = top_left[0] + (s - 1) / 2 + shift[0], top_left[1] + (s - 1) / 2 + shift[1]
        c = (p - 1) / 2
        # patch pixel (u, v) samples crop point centre + k R (u - c, v - c)
        matrix = np.array([[a, -b, cx - a * c + b * c], [b, a, cy - b * c - a * c]])
        patch = cv2.warpAffine(
            crop,
            matrix,
            (p, p),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        log_power = np.log(self.contrast_power)
        s_power, v_power = np.exp(rng.uniform(*log_power, size=2))
        hue_shift = rng.uniform(-self.hue, self.hue)
        if (s_power, v_power, hue_shift) != (1.0, 1.0, 0.0):
            patch = _recolour(patch, s_power, v_power, hue_shift)
        return patch

    def __getitem__(self, key) -> dict:
        """Returns: "images": copies x 3 x P x P uint8, "labels": copies int64 (the class
        ``index``), "index", "num_bad"."""
        epoch, index = key
        rng = sample_rng(self.seed, epoch, index)
        crop, top_left, bad = self.seed_of(index)
        copies = [self.transform(crop, top_left, rng) for _ in range(self.copies)]
        return {
            "images": stack_views(copies),  # copies x 3 x P x P
            "labels": torch.full((self.copies,), index, dtype=torch.long),
            "index": index,
            "num_bad": bad,
        }
