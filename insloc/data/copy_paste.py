"""Copy-paste compositing: crop a foreground, rescale it and paste it on a background canvas.

Every draw depends only on the image's (h, w) from its header, so a sample can decide what it needs
before decoding and then decode at a reduced size (see :func:`PastePlan.needed_size`). Randomness
comes from an explicit ``np.random.Generator``.
"""

import math
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "PastePlan",
    "crop_resize",
    "paste",
    "sample_crop",
    "sample_paste_plan",
    "sample_paste_size",
]


def sample_crop(h: int, w: int, scale, ratio, tries: int, rng: np.random.Generator) -> tuple:
    """A crop by torchvision's RandomResizedCrop rule, in the image's pixel coordinates.

    Area fraction U(scale), aspect ratio w/h log-uniform in ``ratio``; the first of ``tries`` draws
    that fits is taken, else a centre crop with the aspect ratio clamped into ``ratio``.

    Returns:
        (top, left, crop_h, crop_w) integers with the crop inside the image.
    """
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(tries):
        target_area = area * rng.uniform(scale[0], scale[1])
        aspect = math.exp(rng.uniform(log_ratio[0], log_ratio[1]))
        cw = int(round(math.sqrt(target_area * aspect)))
        ch = int(round(math.sqrt(target_area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            top = int(rng.integers(0, h - ch + 1))
            left = int(rng.integers(0, w - cw + 1))
            return top, left, ch, cw
    in_ratio = w / h
    if in_ratio < min(ratio):
        cw, ch = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        ch, cw = h, int(round(h * max(ratio)))
    else:
        cw, ch = w, h
    ch, cw = max(1, min(ch, h)), max(1, min(cw, w))
    return (h - ch) // 2, (w - cw) // 2, ch, cw


def sample_paste_size(crop_h: int, crop_w: int, size_range, rng: np.random.Generator) -> tuple:
    """Target size of a pasted crop, keeping the crop's aspect ratio.

    Draws integers w, h in [low, high) and returns the largest size with long side <= max(w, h) and
    short side <= min(w, h) (mmcv's ``imrescale`` with a (w, h) scale, as the official code).

    Returns:
        (paste_h, paste_w), each >= 1.
    """
    tw, th = (int(v) for v in rng.integers(size_range[0], size_range[1], size=2))
    factor = min(max(tw, th) / max(crop_h, crop_w), min(tw, th) / min(crop_h, crop_w))
    # x + 0.5 truncated is mmcv's rounding; a side <= an integer bound stays <= it after rounding.
    return max(1, int(crop_h * factor + 0.5)), max(1, int(crop_w * factor + 0.5))


@dataclass(frozen=True)
class PastePlan:
    """Where one view's foreground comes from and where it goes.

    ``crop`` is (top, left, h, w) in the full-size image; the crop is rescaled to ``paste_size``
    (h, w) and pasted with its top-left corner at ``position`` (x, y) on the canvas.
    """

    crop: tuple
    paste_size: tuple
    position: tuple

    @property
    def box(self) -> np.ndarray:
        """The pasted rectangle [x1, y1, x2, y2] on the canvas (x2 = x1 + paste width), (4,)."""
        x, y = self.position
        return np.array([x, y, x + self.paste_size[1], y + self.paste_size[0]], np.float32)

    def needed_size(self, h: int, w: int) -> tuple:
        """Smallest decoded (h, w) of an h x w image whose crop still has the pasted resolution."""
        return self.paste_size[0] * h / self.crop[2], self.paste_size[1] * w / self.crop[3]


def sample_paste_plan(
    h, w, *, canvas_size, crop_scale, crop_ratio, crop_tries, paste_size, rng
) -> PastePlan:
    """Crop, paste size and a position with the crop fully inside the canvas (PROTOCOLS.md)."""
    crop = sample_crop(h, w, crop_scale, crop_ratio, crop_tries, rng)
    ph, pw = sample_paste_size(crop[2], crop[3], paste_size, rng)
    ph, pw = min(ph, canvas_size), min(pw, canvas_size)
    x = int(rng.integers(0, canvas_size - pw + 1))
    y = int(rng.integers(0, canvas_size - ph + 1))
    return PastePlan(crop=crop, paste_size=(ph, pw), position=(x, y))


def crop_resize(
    image: np.ndarray, full_size: tuple, crop: tuple, out_size: tuple, interpolation: str = "area"
) -> np.ndarray:
    """Cut ``crop`` (given in full-size coordinates) from a possibly reduced decode and resize it.

    Args:
        image: h' x w' x 3 decode of an image whose full size is ``full_size`` (h, w).
        crop: (top, left, h, w) in full-size pixels.
        out_size: (h, w) of the result.
        interpolation: see :func:`resize`.
    Returns:
        out_h x out_w x 3 uint8.
    """
    sy, sx = image.shape[0] / full_size[0], image.shape[1] / full_size[1]
    top, left, ch, cw = crop
    y0 = min(int(round(top * sy)), image.shape[0] - 1)
    x0 = min(int(round(left * sx)), image.shape[1] - 1)
    y1 = min(max(y0 + 1, int(round((top + ch) * sy))), image.shape[0])
    x1 = min(max(x0 + 1, int(round((left + cw) * sx))), image.shape[1])
    return resize(image[y0:y1, x0:x1], out_size, interpolation)


def resize(image: np.ndarray, out_size: tuple, interpolation: str = "area") -> np.ndarray:
    """Resize to (h, w).

    Args:
        interpolation: "area" (ours, INPUT.RESIZE_INTERPOLATION's default): area averaging when
            shrinking (no aliasing), bilinear when enlarging; "bilinear": OpenCV's bilinear always,
            as the official InsLoc code (mmcv's default).
    Returns:
        out_h x out_w x 3 uint8; ``image`` itself (made contiguous) when it has that size already.
    """
    if interpolation not in ("area", "bilinear"):
        raise ValueError(f"interpolation {interpolation!r}: expected 'area' or 'bilinear'")
    h, w = image.shape[:2]
    if (h, w) == tuple(out_size):
        return np.ascontiguousarray(image)
    shrink = out_size[0] < h and out_size[1] < w
    interp = cv2.INTER_AREA if shrink and interpolation == "area" else cv2.INTER_LINEAR
    return cv2.resize(image, (out_size[1], out_size[0]), interpolation=interp)


def paste(canvas: np.ndarray, patch: np.ndarray, position: tuple) -> np.ndarray:
    """Write ``patch`` into ``canvas`` (in place) with its top-left corner at (x, y); returns it."""
    x, y = position
    canvas[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
    return canvas
