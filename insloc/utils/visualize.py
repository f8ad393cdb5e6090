"""A PNG grid of pretraining samples, to check by eye what the network is trained on.

Each sample is a (query | key) pair; the header names the two columns of every pair and a one-line
legend says what the boxes are. A view shows only the boxes it pools (its ``q_boxes`` / ``k_boxes``
rows, set by INPUT.BOX_AUG.QUERY_FEATURES / KEY_FEATURES): in the official recipe the augmented box
appears on the query alone, since the key pools its pasted box on every level.
"""

import math
import os

import cv2
import numpy as np
import torch

__all__ = ["composite_grid", "save_composite_grid"]

_GREEN = (0, 200, 0)  # BGR: the pasted box
_RED = (0, 0, 230)  # BGR: the augmented box
_INNER_GAP = 2  # between the query and the key of one pair
_PAIR_GAP = 24  # between pairs: wide enough that the pairs read as units
_ROW_GAP = 8
_STRIP = 18  # height of the header (column labels) and of the legend line
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FONT_SCALE = 0.45


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


def _numpy(x) -> np.ndarray:
    return x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _pooled_boxes(sample: dict, view: str) -> list:
    """[(xyxy, colour)] of the distinct boxes ``view`` ("q" or "k") pools on its levels: green
    where a level pools the pasted box, red where it pools the augmented one."""
    if f"{view}_boxes" not in sample:
        return []  # MoCo: the whole view is pooled
    paste = _numpy(sample[f"{view}_paste_box"])
    boxes = []
    for row in np.unique(_numpy(sample[f"{view}_boxes"]).reshape(-1, 4), axis=0):
        boxes.append((row, _GREEN if np.array_equal(row, paste) else _RED))
    return sorted(boxes, key=lambda b: b[1] == _RED)  # red on top where they overlap


def _view_bgr(image, boxes) -> np.ndarray:
    """3 x H x W RGB uint8 (tensor or array) to H x W x 3 BGR with ``boxes`` [(xyxy, colour)]."""
    bgr = np.ascontiguousarray(_numpy(image).transpose(1, 2, 0)[:, :, ::-1])
    for box, colour in boxes:
        x1, y1, x2, y2 = (int(round(float(v))) for v in box)
        cv2.rectangle(bgr, (x1, y1), (x2 - 1, y2 - 1), colour, 1)
    return bgr


def _text(canvas: np.ndarray, text: str, x: int, y: int, colour=(0, 0, 0)) -> None:
    """Write ``text`` with its baseline at (x, y)."""
    cv2.putText(canvas, text, (x, y), _FONT, _FONT_SCALE, colour, 1, cv2.LINE_AA)


def _text_width(text: str) -> int:
    return cv2.getTextSize(text, _FONT, _FONT_SCALE, 1)[0][0]


def _legend(colours: set) -> list:
    """[(text, colour)] pieces of the legend line for the box colours drawn."""
    if not colours:
        return [("query | key: two views of one image (each pooled whole)", (0, 0, 0))]
    parts = []
    if _GREEN in colours:
        parts.append(("green: pasted box", _GREEN))
    if _RED in colours:
        parts.append(("red: augmented box", _RED))
    parts.append(("(each view shows the boxes it pools)", (0, 0, 0)))
    return parts


def composite_grid(samples_or_batch, max_items: int = 16) -> np.ndarray:
    """(query | key) pairs in a grid, with column labels and a one-line legend.

    Args:
        samples_or_batch: a list of dataset samples or one collated batch ("q", "k": 3 x H x W
            uint8 RGB; InsLoc samples also "q_boxes", "k_boxes" (L x 4) and the paste boxes).
        max_items: at most this many pairs.
    Returns:
        the grid, rows x cols x 3 uint8 BGR: a header strip of height ``_STRIP``, then rows of
        pairs (query at x = c * (2 W + _INNER_GAP + _PAIR_GAP), key _INNER_GAP to its right),
        then the legend strip.
    """
    items = _as_items(samples_or_batch, max_items)
    if not items:
        raise ValueError("save_composite_grid: no samples to draw")
    pairs, colours = [], set()
    for s in items:
        views = []
        for v in ("q", "k"):
            boxes = _pooled_boxes(s, v)
            colours.update(colour for _, colour in boxes)
            views.append(_view_bgr(s[v], boxes))
        h = max(x.shape[0] for x in views)
        gap = np.full((h, _INNER_GAP, 3), 255, np.uint8)
        pairs.append((np.hstack([views[0], gap, views[1]]), views[0].shape[1]))
    view_w = max(w for _, w in pairs)
    pair_h = max(p.shape[0] for p, _ in pairs)
    pair_w = max(p.shape[1] for p, _ in pairs)
    cols = math.ceil(math.sqrt(len(pairs)))
    rows = math.ceil(len(pairs) / cols)
    legend = _legend(colours)
    legend_w = sum(_text_width(t) for t, _ in legend) + 12 * len(legend)
    width = max(cols * pair_w + (cols - 1) * _PAIR_GAP, legend_w)
    height = _STRIP + rows * pair_h + (rows - 1) * _ROW_GAP + _STRIP
    grid = np.full((height, width, 3), 255, np.uint8)
    for c in range(min(cols, len(pairs))):  # column labels, once above each column of pairs
        x0 = c * (pair_w + _PAIR_GAP)
        for label, offset in (("query", 0), ("key", view_w + _INNER_GAP)):
            centre = x0 + offset + view_w // 2
            _text(grid, label, centre - _text_width(label) // 2, _STRIP - 5)
    for i, (p, _) in enumerate(pairs):
        r, c = divmod(i, cols)
        y, x = _STRIP + r * (pair_h + _ROW_GAP), c * (pair_w + _PAIR_GAP)
        grid[y : y + p.shape[0], x : x + p.shape[1]] = p
    x = 2
    for text, colour in legend:
        _text(grid, text, x, height - 5, colour)
        x += _text_width(text) + 12
    return grid


def save_composite_grid(samples_or_batch, path: str, max_items: int = 16) -> str:
    """Write :func:`composite_grid` of the samples as a PNG (its folder is created).

    Returns:
        ``path``.
    """
    grid = composite_grid(samples_or_batch, max_items)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    if not cv2.imwrite(path, grid):
        raise OSError(f"could not write the image grid to {path}")
    return path
