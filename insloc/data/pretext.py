"""What the classic pretext datasets share: a random square crop of each image, and 3x3 tiles.

Every sample of RotNet, jigsaw, relative location and Exemplar-CNN starts from the image resized to
a shorter side ``resize`` (0: as it is) and a random ``crop_size`` square of it, flipped with
``flip_prob``; the crop is cut from a reduced decode whenever its resolution allows. A sample is a
dict ``{"images": K x 3 x S x S uint8, "labels": K' int64, "index": int, "num_bad": int}``; a
batch stacks them to N x K x 3 x S x S.
"""

import numpy as np
import torch

from .copy_paste import crop_resize
from .datasets import _PretrainDataset, _to_chw
from .image_io import choose_reduction
from .sources import ImageSource

__all__ = ["PretextDataset", "cut_tiles", "stack_views"]


class PretextDataset(_PretrainDataset):
    """Keyed random square crops of an image source (subclasses turn a crop into a sample).

    Args:
        source: the unlabelled images.
        resize: shorter side the image is resized to before cropping (0: keep its size).
        crop_size: side of the square crop.
        seed: base of every sample's generator.
        flip_prob: probability of a horizontal flip of the crop.
        interpolation: "area" or "bilinear" for the resize (``insloc.data.copy_paste.resize``).
    """

    def __init__(
        self,
        source: ImageSource,
        *,
        resize: int = 256,
        crop_size: int = 224,
        seed: int = 0,
        flip_prob: float = 0.5,
        interpolation: str = "area",
    ):
        super().__init__(source, seed, flip_prob, interpolation)
        if resize and resize < crop_size:
            raise ValueError(f"resize ({resize}) must be 0 or at least crop_size ({crop_size})")
        self.resize = resize
        self.crop_size = crop_size

    @staticmethod
    def base_kwargs(cfg) -> dict:
        """The constructor arguments every pretext dataset reads from ``cfg``."""
        return dict(
            resize=cfg.INPUT.PRETEXT.RESIZE,
            crop_size=cfg.INPUT.PRETEXT.CROP_SIZE,
            seed=cfg.SEED,
            flip_prob=cfg.INPUT.COLOR.FLIP_PROB,
            interpolation=cfg.INPUT.RESIZE_INTERPOLATION,
        )

    def load_crop(self, index: int, rng: np.random.Generator, bad: list):
        """A random ``crop_size`` square of image ``index`` (or of its replacement if unreadable).

        Returns:
            (index actually used, crop_size x crop_size x 3 uint8 RGB).
        """
        c = self.crop_size

        def plan(hw):
            h, w = hw
            scale = self.resize / min(h, w) if self.resize else 1.0
            side = min(c / scale, h, w)  # crop side in full-size pixels (upsampled if short)
            top = rng.uniform(0, h - side)
            left = rng.uniform(0, w - side)
            return (top, left, side, side), choose_reduction(h, w, c * h / side, c * w / side)

        index, hw, crop, image = self._load_first_good(index, rng, bad, plan)
        view = crop_resize(image, hw, crop, (c, c), self.interpolation)
        if rng.random() < self.flip_prob:
            view = np.ascontiguousarray(view[:, ::-1])
        return index, view


def cut_tiles(image: np.ndarray, tile: int, jitter: int, rng: np.random.Generator):
    """The 3x3 grid of tiles with gaps and jitter (Noroozi & Favaro; Doersch et al.).

    The image is split into 3x3 cells of side ``S // 3``; each tile is centred in its cell and
    shifted by up to ``jitter`` pixels in x and y, so neighbouring tiles are separated by a gap of
    at least ``cell - tile - 2 jitter`` pixels (no shortcut through continuous edges).

    Args:
        image: S x S x 3 uint8.
        tile: tile side, with ``tile + 2 jitter <= S // 3``.
        jitter: largest shift from the cell's centre, pixels.
        rng: the sample's generator.
    Returns:
        tiles: 9 x tile x tile x 3 in raster order of the cells; origins: 9 x 2 (y, x) pixels.
    """
    cell = image.shape[0] // 3
    if tile + 2 * jitter > cell:
        raise ValueError(f"tile {tile} + 2 x jitter {jitter} does not fit in a {cell}-pixel cell")
    margin = (cell - tile) // 2
    tiles, origins = [], []
    for r in range(3):
        for c in range(3):
            dy, dx = rng.integers(-jitter, jitter + 1, size=2) if jitter else (0, 0)
            y, x = r * cell + margin + int(dy), c * cell + margin + int(dx)
            tiles.append(image[y : y + tile, x : x + tile])
            origins.append((y, x))
    return np.stack(tiles), np.asarray(origins)


def stack_views(views) -> torch.Tensor:
    """K images H x W x 3 uint8 -> K x 3 x H x W uint8 tensor."""
    return torch.stack([_to_chw(np.ascontiguousarray(v)) for v in views])
