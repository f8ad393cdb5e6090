"""Synthetic warps of real or synthetic images, with exact ground truth.

- :class:`WarpPairs` (benchmark, ``warp:<folder>`` and the embedded default): pair i is image
  i mod n and a random warp of it; keypoints are drawn in the warped image where the warp maps
  them inside the source, so both sides are exact.
- :class:`WarpTrainingPairs` (introspection training): keyed by (epoch, index) like insloc's
  pretraining datasets, so the sample stream is a pure function of (SEED, iteration) and resume
  is exact; image and warp are resized to the square input, the warp gets colour jitter, and
  NUM_POINTS corresponding points are drawn.
"""

import cv2
import numpy as np
import torch

from insloc.data import (
    BadImageError,
    ColorAugmentation,
    ImageSource,
    UnreadableDataError,
    sample_rng,
)
from insloc.data.image_io import warn_unreadable_once

from ..warps import random_warp
from .pairs import PairDataset

__all__ = ["WarpPairs", "WarpTrainingPairs"]

MAX_CONSECUTIVE_FAILURES = 50


def _points_inside(rng, warp, count, src_size, margin=0.0):
    """``count`` warped-image points whose source point lies inside the source image.

    Returns (warped points M x 2, source points M x 2) with M <= count (few when the warp leaves
    the source almost entirely; the draw is repeated 20 times at most).
    """
    h, w = warp.size
    sh, sw = src_size
    got_v, got_u = [], []
    for _ in range(20):
        v = rng.uniform([margin, margin], [w - 1 - margin, h - 1 - margin], (4 * count, 2))
        u = warp.backward(v)
        ok = (u[:, 0] >= margin) & (u[:, 0] <= sw - 1 - margin)
        ok &= (u[:, 1] >= margin) & (u[:, 1] <= sh - 1 - margin)
        got_v.append(v[ok])
        got_u.append(u[ok])
        if sum(len(x) for x in got_v) >= count:
            break
    return np.concatenate(got_v)[:count], np.concatenate(got_u)[:count]


class WarpPairs(PairDataset):
    """Args: source: images; num_pairs; num_keypoints; seed; warp: kwargs of ``random_warp``;
    name_prefix: "warp:<folder>" or "synthetic" (for the pair names)."""

    name = "warp"

    def __init__(
        self,
        source: ImageSource,
        num_pairs: int = 50,
        num_keypoints: int = 20,
        seed: int = 0,
        warp: dict = None,
    ):
        self.source = source
        self.num_keypoints = num_keypoints
        self.seed = seed
        self.warp = dict(warp or {})
        super().__init__([{"index": i % len(source)} for i in range(num_pairs)])

    def __getitem__(self, i: int) -> dict:
        index = self.records[i]["index"]
        image = self.source.load(index)  # raises BadImageError, which the evaluator counts
        rng = sample_rng(self.seed, 0, i)
        h, w = image.shape[:2]
        warp = random_warp(rng, (h, w), **self.warp)
        warped = warp.render(image)
        v, u = _points_inside(rng, warp, self.num_keypoints, (h, w), margin=2.0)
        return {
            "src_image": image,
            "trg_image": warped,
            "src_kps": u,
            "trg_kps": v,
            "trg_bbox": None,
            "category": "all",
            "name": f"{self.source.name(index)}#warp{i}",
        }


class WarpTrainingPairs(torch.utils.data.Dataset):
    """Introspection training pairs keyed by (epoch, index).

    Args:
        source: images.
        size: side of the square input.
        num_points: corresponding points per pair.
        seed: SEED.
        warp: kwargs of ``random_warp``.
        color: ColorAugmentation applied to the warped view.
    """

    def __init__(self, source, size, num_points, seed=0, warp=None, color=None):
        self.source = source
        self.size = size
        self.num_points = num_points
        self.seed = seed
        self.warp = dict(warp or {})
        self.color = color

    @classmethod
    def from_config(cls, cfg, source) -> "WarpTrainingPairs":
        w = cfg.DENSE.WARP
        return cls(
            source,
            cfg.DENSE.INPUT_SIZE,
            cfg.DENSE.INTROSPECTION.NUM_POINTS,
            seed=cfg.SEED,
            warp=warp_kwargs(cfg),
            color=ColorAugmentation(
                jitter=w.COLOR_JITTER, jitter_prob=w.COLOR_PROB, grayscale_prob=0, blur_prob=0
            ),
        )

    def __len__(self) -> int:
        return len(self.source)

    def __getitems__(self, keys) -> list:
        return [self[k] for k in keys]

    def load_image(self, index: int) -> np.ndarray:
        """Image ``index`` of the source (BadImageError when it cannot be read)."""
        return self.source.load(index)

    def __getitem__(self, key) -> dict:
        epoch, index = key
        rng = sample_rng(self.seed, epoch, index)
        bad = []  # names of the unreadable files replaced
        for _ in range(MAX_CONSECUTIVE_FAILURES):
            try:
                image = self.load_image(index)
                break
            except BadImageError as e:
                bad.append(self.source.name(index))
                warn_unreadable_once(bad[-1], e)
                index = int(rng.integers(len(self.source)))
        else:
            raise UnreadableDataError(
                f"{MAX_CONSECUTIVE_FAILURES} consecutive unreadable images in DATASETS.DENSE_TRAIN "
                f"{getattr(self.source, 'description', '')!r} (the last: {bad[-1]})"
            )
        s = self.size
        image = cv2.resize(image, (s, s), interpolation=cv2.INTER_AREA)
        for _ in range(100):
            warp = random_warp(rng, (s, s), **self.warp)
            v, u = _points_inside(rng, warp, self.num_points, (s, s))
            if len(v) == self.num_points:
                break
        else:
            raise ValueError(
                f"100 random warps in a row left under {self.num_points} points inside the image; "
                "lower DENSE.WARP.HOMOGRAPHY or DENSE.WARP.TPS"
            )
        warped = warp.render(image)
        if self.color is not None:
            warped = self.color(warped, rng)
        return {
            "image": _chw(image),  # 3 x S x S uint8
            "warped": _chw(warped),  # 3 x S x S uint8
            "points": torch.from_numpy(u.astype(np.float32)),  # P x 2 in the image
            "warped_points": torch.from_numpy(v.astype(np.float32)),  # P x 2 in the warp
            "num_bad": torch.tensor(len(bad)),
            "bad_files": bad,
        }


def _chw(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def warp_kwargs(cfg) -> dict:
    w = cfg.DENSE.WARP
    return {"homography": w.HOMOGRAPHY, "tps_grid": w.TPS_GRID, "tps": w.TPS}
