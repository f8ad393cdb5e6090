"""Jigsaw samples (Noroozi & Favaro, ECCV 2016): 3x3 tiles shuffled by one of a fixed set of
permutations, labelled by the permutation's index.

The set is chosen greedily for maximal minimum Hamming distance: start from one random order of
the 9 tiles, then repeatedly add the order farthest (in Hamming distance) from all those chosen.
The paper found a set of 100 with a large minimum distance best; its size is a config key.
"""

import itertools
from functools import lru_cache

import numpy as np
import torch

from .datasets import sample_rng
from .pretext import PretextDataset, cut_tiles, stack_views

__all__ = ["JigsawDataset", "jigsaw_permutations", "min_hamming_distance"]


@lru_cache(maxsize=1)
def _all_orders() -> np.ndarray:
    return np.array(list(itertools.permutations(range(9))), dtype=np.uint8)  # 9! x 9


@lru_cache(maxsize=8)
def jigsaw_permutations(num: int = 100, seed: int = 0) -> np.ndarray:
    """``num`` orders of the 9 tiles with greedily maximised minimum Hamming distance.

    Args:
        num: size of the set (at most 9! = 362880).
        seed: picks the first order; the rest follows deterministically (ties: lowest index).
    Returns:
        num x 9 int64: row p, position j holds tile ``perms[p, j]`` (raster index of its cell).
    """
    orders = _all_orders()
    if not 1 <= num <= len(orders):
        raise ValueError(f"number of jigsaw permutations must be in 1..{len(orders)}, got {num}")
    first = int(np.random.default_rng(seed).integers(len(orders)))
    chosen = [first]
    distance = (orders != orders[first]).sum(axis=1)  # 9!: distance to the chosen set
    for _ in range(num - 1):
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        np.minimum(distance, (orders != orders[nxt]).sum(axis=1), out=distance)
    return orders[chosen].astype(np.int64)


def min_hamming_distance(perms: np.ndarray) -> int:
    """Smallest Hamming distance between two rows of ``perms`` (P x 9)."""
    d = (perms[:, None, :] != perms[None, :, :]).sum(axis=2)  # P x P
    np.fill_diagonal(d, perms.shape[1] + 1)
    return int(d.min())


class JigsawDataset(PretextDataset):
    """Nine tiles of one crop in the order of a random permutation of the set.

    Args:
        source, resize, crop_size, seed, flip_prob: see :class:`PretextDataset`.
        tile_size, jitter: see :func:`~insloc.data.pretext.cut_tiles`.
        permutations: P x 9 (``jigsaw_permutations``).
    """

    def __init__(self, source, *, tile_size: int, jitter: int, permutations: np.ndarray, **kwargs):
        super().__init__(source, **kwargs)
        if tile_size + 2 * jitter > self.crop_size // 3:
            raise ValueError(
                f"jigsaw tile {tile_size} + 2 x jitter {jitter} exceeds the cell side "
                f"crop_size / 3 = {self.crop_size // 3}"
            )
        self.tile_size = tile_size
        self.jitter = jitter
        self.permutations = np.asarray(permutations)

    @classmethod
    def from_config(cls, cfg, source) -> "JigsawDataset":
        return cls(
            source,
            tile_size=cfg.INPUT.JIGSAW.TILE_SIZE,
            jitter=cfg.INPUT.JIGSAW.JITTER,
            permutations=permutations_from_config(cfg),
            **cls.base_kwargs(cfg),
        )

    def __getitem__(self, key) -> dict:
        """Returns: "images": 9 x 3 x t x t uint8, position j holding tile ``perm[j]``;
        "labels": (1,) the permutation's index; "index"; "num_bad"."""
        epoch, index = key
        rng = sample_rng(self.seed, epoch, index)
        bad = [0]
        index, crop = self.load_crop(index, rng, bad)
        tiles, _ = cut_tiles(crop, self.tile_size, self.jitter, rng)  # 9 x t x t x 3
        label = int(rng.integers(len(self.permutations)))
        return {
            "images": stack_views(tiles[self.permutations[label]]),  # 9 x 3 x t x t
            "labels": torch.tensor([label]),
            "index": index,
            "num_bad": bad[0],
        }


def permutations_from_config(cfg) -> np.ndarray:
    """The permutation set of MODEL.JIGSAW, checked against MODEL.JIGSAW.MIN_HAMMING."""
    j = cfg.MODEL.JIGSAW
    perms = jigsaw_permutations(j.NUM_PERMUTATIONS, j.PERMUTATION_SEED)
    if len(perms) > 1 and min_hamming_distance(perms) < j.MIN_HAMMING:
        raise ValueError(
            f"MODEL.JIGSAW.MIN_HAMMING = {j.MIN_HAMMING}: the {len(perms)} permutations reach a "
            f"minimum Hamming distance of {min_hamming_distance(perms)} only; lower one of them"
        )
    return perms
