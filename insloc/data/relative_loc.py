"""Relative patch location samples (Doersch et al., ICCV 2015): the centre tile of a 3x3 grid and
one of its 8 neighbours, labelled by the neighbour's position.

Labels follow the raster order of the grid without its centre:
``0 1 2 / 3 . 4 / 5 6 7``. Gaps and jitter come from :func:`~insloc.data.pretext.cut_tiles`.
Chromatic aberration lets a network locate a patch in the lens's field from its colour fringes
alone; the paper's counter-measures are options: "drop" keeps one random channel and replaces the
other two by Gaussian noise, "project" removes the green-magenta colour axis.
"""

import numpy as np
import torch

from .datasets import sample_rng
from .pretext import PretextDataset, cut_tiles, stack_views

__all__ = ["NEIGHBOURS", "RelativeLocDataset", "chromatic_drop", "chromatic_project"]

# Raster index of each label's cell in the 3x3 grid (4 is the centre).
NEIGHBOURS = (0, 1, 2, 3, 5, 6, 7, 8)
CENTRE = 4

# Green-magenta axis of RGB: the direction chromatic aberration moves colours along.
_GREEN_MAGENTA = np.array([-1.0, 2.0, -1.0]) / np.sqrt(6.0)


def chromatic_drop(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep one random channel; the others become Gaussian noise around its mean, with 1/100 of its
    standard deviation (Doersch et al.). Args/Returns: H x W x 3 uint8."""
    keep = int(rng.integers(3))
    kept = patch[..., keep].astype(np.float32)
    out = np.empty(patch.shape, np.float32)
    for c in range(3):
        if c == keep:
            out[..., c] = kept
        else:
            out[..., c] = kept.mean() + rng.normal(0, kept.std() / 100 + 1e-3, kept.shape)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def chromatic_project(patch: np.ndarray) -> np.ndarray:
    """Remove the green-magenta component of every pixel (``x - (x . a) a``, a = (-1, 2, -1)/sqrt 6)
    around the patch's mean colour. Args/Returns: H x W x 3 uint8."""
    x = patch.astype(np.float32)
    mean = x.reshape(-1, 3).mean(axis=0)
    centred = x - mean
    x = x - (centred @ _GREEN_MAGENTA)[..., None] * _GREEN_MAGENTA
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


class RelativeLocDataset(PretextDataset):
    """The centre tile and one random neighbour of one crop.

    Args:
        source, resize, crop_size, seed, flip_prob: see :class:`PretextDataset`.
        tile_size, jitter: see :func:`~insloc.data.pretext.cut_tiles`.
        chromatic: "none", "drop" or "project" (applied to each tile).
    """

    def __init__(self, source, *, tile_size: int, jitter: int, chromatic: str = "none", **kwargs):
        super().__init__(source, **kwargs)
        if chromatic not in ("none", "drop", "project"):
            raise ValueError(f"chromatic = {chromatic!r}: expected 'none', 'drop' or 'project'")
        if tile_size + 2 * jitter > self.crop_size // 3:
            raise ValueError(
                f"relative-location tile {tile_size} + 2 x jitter {jitter} exceeds the cell side "
                f"crop_size / 3 = {self.crop_size // 3}"
            )
        self.tile_size = tile_size
        self.jitter = jitter
        self.chromatic = chromatic

    @classmethod
    def from_config(cls, cfg, source) -> "RelativeLocDataset":
        r = cfg.INPUT.RELATIVE_LOC
        return cls(
            source,
            tile_size=r.TILE_SIZE,
            jitter=r.JITTER,
            chromatic=r.CHROMATIC,
            **cls.base_kwargs(cfg),
        )

    def __getitem__(self, key) -> dict:
        """Returns: "images": 2 x 3 x t x t uint8 (centre, neighbour); "labels": (1,) the
        neighbour's position 0..7; "index"; "num_bad"."""
        epoch, index = key
        rng = sample_rng(self.seed, epoch, index)
        bad = [0]
        index, crop = self.load_crop(index, rng, bad)
        tiles, _ = cut_tiles(crop, self.tile_size, self.jitter, rng)  # 9 x t x t x 3
        label = int(rng.integers(8))
        pair = [tiles[CENTRE], tiles[NEIGHBOURS[label]]]
        if self.chromatic == "drop":
            pair = [chromatic_drop(p, rng) for p in pair]
        elif self.chromatic == "project":
            pair = [chromatic_project(p) for p in pair]
        return {
            "images": stack_views(pair),  # 2 x 3 x t x t
            "labels": torch.tensor([label]),
            "index": index,
            "num_bad": bad[0],
        }
