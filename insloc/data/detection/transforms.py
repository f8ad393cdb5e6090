"""Geometric transforms of detection fine-tuning: shortest-edge resize and horizontal flip.

The output size follows detectron2's ``ResizeShortestEdge.get_output_shape`` and uint8 images are
resized with PIL's bilinear filter as detectron2's ``ResizeTransform`` does, so the same image gives
the same pixels here and in detectron2 (the detectors are compared detection for detection).
"""

import numpy as np
from PIL import Image

__all__ = ["ResizeFlip", "resize_shape", "sample_short_edge"]


def resize_shape(height: int, width: int, short_edge: int, max_size: int) -> tuple:
    """Output (h, w) of resizing the shorter side to ``short_edge``, the longer to <= ``max_size``.

    The scale is ``short_edge / min(h, w)``, reduced so that the longer side is ``max_size`` when it
    would exceed it; sides round half up (``int(x + 0.5)``). ``short_edge`` 0 keeps the size.
    """
    if short_edge == 0:
        return height, width
    scale = short_edge / min(height, width)
    if height < width:
        new_h, new_w = float(short_edge), scale * width
    else:
        new_h, new_w = scale * height, float(short_edge)
    if max(new_h, new_w) > max_size:
        shrink = max_size / max(new_h, new_w)
        new_h, new_w = new_h * shrink, new_w * shrink
    return int(new_h + 0.5), int(new_w + 0.5)


def sample_short_edge(rng: np.random.Generator, sizes, sampling: str) -> int:
    """One training short-edge length.

    Args:
        rng: the sample's generator.
        sizes: candidate lengths ("choice") or (low, high), both included ("range").
        sampling: "choice" or "range" (detectron2's INPUT.MIN_SIZE_TRAIN_SAMPLING).
    """
    if sampling == "choice":
        return int(sizes[int(rng.integers(len(sizes)))])
    if sampling == "range":
        return int(rng.integers(sizes[0], sizes[1] + 1))
    raise ValueError(f"sampling {sampling!r}: expected 'choice' or 'range'")


class ResizeFlip:
    """Resize an image of (height, width) to (new_h, new_w), then optionally flip it horizontally.

    Coordinates scale by (new_w / width, new_h / height); a flip maps x to new_w - x, so a box
    [x1, y1, x2, y2] becomes [new_w - x2, y1, new_w - x1, y2].
    """

    def __init__(self, height: int, width: int, new_h: int, new_w: int, flip: bool = False):
        self.height, self.width = height, width
        self.new_h, self.new_w = new_h, new_w
        self.flip = flip
        self.scale_x = new_w / width
        self.scale_y = new_h / height

    def apply_image(self, image: np.ndarray) -> np.ndarray:
        """H x W x 3 uint8 -> new_h x new_w x 3 uint8 (C-contiguous)."""
        if image.shape[:2] != (self.new_h, self.new_w):
            pil = Image.fromarray(image).resize((self.new_w, self.new_h), Image.BILINEAR)
            image = np.asarray(pil)
        if self.flip:
            image = image[:, ::-1]
        # writable too: PIL's arrays are read-only, and torch.from_numpy wants to own writable data
        return np.require(image, requirements=("C", "W"))

    def apply_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """N x 4 XYXY -> N x 4 XYXY float64 in output pixels (not clipped)."""
        # float64 as detectron2 computes coordinates; the sample stores them as float32.
        out = np.asarray(boxes, np.float64).reshape(-1, 4) * [
            self.scale_x,
            self.scale_y,
            self.scale_x,
            self.scale_y,
        ]
        if self.flip:
            out = np.stack(
                [self.new_w - out[:, 2], out[:, 1], self.new_w - out[:, 0], out[:, 3]], 1
            )
        return out

    def apply_polygon(self, polygon) -> np.ndarray:
        """[x0, y0, x1, y1, ...] -> float32 array of the same layout in output pixels."""
        xy = np.asarray(polygon, np.float64).reshape(-1, 2) * [self.scale_x, self.scale_y]
        if self.flip:
            xy[:, 0] = self.new_w - xy[:, 0]
        return xy.ravel().astype(np.float32)
