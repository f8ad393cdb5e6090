"""A PNG grid of pretraining samples, to check by eye what the network is trained on."""

import math
import os

import cv2
import numpy as np
import torch

__all__ = ["save_composite_grid"]

_GREEN = (0, 200, 0)  # BGR: the pasted box
_RED = (0, 0, 230)  # BGR: the augmented box
_GAP = 4


def _as_items(samples_or_batch, max_items: int) -> list:
    """A list of per-sample dicts from a list of samples or a collated batch dict."""
    if isinstance(samples_or_batch, dict):
        batch = samples_or_batch
        n = len(batch["q"])
        return [{k: v[i] for k, v in batch.items() if _indexable(v, n)} for i in range(n)][
            :max_items
        ]
    return list(samples_or_batch)[:max_items]


def _indexable(value, n: int) -> bool:
    return isinstance(value, (torch.Tensor, np.ndarray, list, tuple)) and len(value) == n


def _view_bgr(image, boxes) -> np.ndarray:
    """3 x H x W RGB uint8 (tensor or array) to H x W x 3 BGR with ``boxes`` [(xyxy, colour)]."""
    chw = image.numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    bgr = np.ascontiguousarray(chw.transpose(1, 2, 0)[:, :, ::-1])
    for box, colour in boxes:
        if box is None:
            continue
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        cv2.rectangle(bgr, (x1, y1), (x2 - 1, y2 - 1), colour, 1)
    return bgr


def save_composite_grid(samples_or_batch, path: str, max_items: int = 16) -> str:
    """Write query | key pairs side by side, in a grid, as a PNG.

    Args:
        samples_or_batch: a list of dataset samples or one collated batch; InsLoc samples get their
            pasted box in green and augmented box in red, MoCo samples show just the two views.
        path: output PNG file (its folder is created).
        max_items: at most this many pairs.
    Returns:
        ``path``.
    """
    items = _as_items(samples_or_batch, max_items)
    if not items:
        raise ValueError("save_composite_grid: no samples to draw")
    pairs = []
    for s in items:
        views = []
        for v in ("q", "k"):
            boxes = [(s.get(f"{v}_paste_box"), _GREEN), (s.get(f"{v}_aug_box"), _RED)]
            views.append(_view_bgr(s[v], boxes))
        h = max(x.shape[0] for x in views)
        gap = np.full((h, _GAP, 3), 255, np.uint8)
        pairs.append(np.hstack([views[0], gap, views[1]]))
    cell_h = max(p.shape[0] for p in pairs) + _GAP
    cell_w = max(p.shape[1] for p in pairs) + 3 * _GAP
    cols = math.ceil(math.sqrt(len(pairs)))
    rows = math.ceil(len(pairs) / cols)
    grid = np.full((rows * cell_h, cols * cell_w, 3), 255, np.uint8)
    for i, p in enumerate(pairs):
        r, c = divmod(i, cols)
        grid[r * cell_h : r * cell_h + p.shape[0], c * cell_w : c * cell_w + p.shape[1]] = p
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if not cv2.imwrite(path, grid):
        raise OSError(f"could not write the image grid to {path}")
    return path
