"""InsLoc's anchor box augmentation: replace a view's box by a random overlapping RPN anchor.

The candidates are the anchors with IoU > ``iou_thresh`` to the box. As in the official code they
get random scores and go through NMS before one survivor is drawn uniformly: NMS thins the dense
clusters of near-identical anchors, so the draw spreads over positions and shapes instead of
following anchor density (PROTOCOLS.md, "Box augmentation with anchors").

When no anchor qualifies, the candidates are the ``fallback_topk`` best-overlapping anchors, and
they go through the same random scores and NMS. With ``fallback_topk`` 4000 this is exactly the
official fallback (its 4000 best of 5120 anchors, close to a random box); ours (5) keeps the box
near the pasted one, NMS then only removing near-duplicates among the five.
"""

import math

import numpy as np

__all__ = ["AnchorBoxSampler", "box_iou", "make_anchors", "nms"]


def make_anchors(canvas_size: int, stride: int, sizes, ratios, offset: float = 0.0) -> np.ndarray:
    """Anchors of a stride-``stride`` grid over a square canvas, unclipped (RoIAlign pads).

    Ratio r is h / w with the area kept: w = s / sqrt(r), h = s * sqrt(r). Centres are at
    ((i + offset) * stride, (j + offset) * stride); cells are ordered row-major, then sizes, then
    ratios (torchvision's order).

    Returns:
        A x 4 float32 XYXY, A = ceil(canvas / stride)^2 * len(sizes) * len(ratios).
    """
    cells = math.ceil(canvas_size / stride)
    base = []
    for s in sizes:
        for r in ratios:
            w, h = s / math.sqrt(r), s * math.sqrt(r)
            base.append((-w / 2, -h / 2, w / 2, h / 2))
    base = np.array(base, np.float64)  # B x 4
    centres = (np.arange(cells, dtype=np.float64) + offset) * stride
    cy, cx = np.meshgrid(centres, centres, indexing="ij")
    shifts = np.stack([cx, cy, cx, cy], axis=-1).reshape(-1, 1, 4)  # cells^2 x 1 x 4
    return (shifts + base[None]).reshape(-1, 4).astype(np.float32)


def box_iou(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of XYXY ``boxes`` (N x 4) with ``others`` (M x 4); returns N x M float32."""
    lt = np.maximum(boxes[:, None, :2], others[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:], others[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=-1)
    area_a = np.prod(boxes[:, 2:] - boxes[:, :2], axis=-1)
    area_b = np.prod(others[:, 2:] - others[:, :2], axis=-1)
    union = area_a[:, None] + area_b[None, :] - inter
    return (inter / np.maximum(union, 1e-9)).astype(np.float32)


def nms(boxes: np.ndarray, scores: np.ndarray, thresh: float) -> np.ndarray:
    """Greedy NMS with torchvision's rule (IoU > ``thresh`` to a kept box suppresses, areas
    without +1, ties in score kept in input order); returns the indices kept, by decreasing score.

    In numpy: a sample has a few dozen candidates, where the IoU matrix costs less than handing
    them to torchvision's kernel through torch tensors.
    """
    boxes = np.asarray(boxes, np.float32)  # N x 4
    order = np.argsort(-np.asarray(scores, np.float32), kind="stable")  # N
    x1, y1, x2, y2 = boxes[order].T  # N each
    areas = (x2 - x1) * (y2 - y1)  # N
    w = np.minimum(x2[:, None], x2[None]) - np.maximum(x1[:, None], x1[None])  # N x N
    h = np.minimum(y2[:, None], y2[None]) - np.maximum(y1[:, None], y1[None])  # N x N
    inter = np.maximum(w, 0) * np.maximum(h, 0)  # N x N
    overlaps = inter / (areas[:, None] + areas[None] - inter) > thresh  # N x N
    suppressed = np.zeros(len(order), bool)
    keep = []
    for i in range(len(order)):
        if not suppressed[i]:
            keep.append(i)
            suppressed |= overlaps[i]
    return order[np.array(keep, np.int64)]


class AnchorBoxSampler:
    """Draw an augmented box for a view's box from the anchors that overlap it.

    Args:
        canvas_size: side of the square canvas in pixels.
        stride: anchor grid stride (the P4 map: 16).
        sizes: anchor sizes (sqrt of the area) in pixels.
        ratios: aspect ratios h / w.
        offset: anchor centres at (i + offset) * stride.
        iou_thresh: candidates have IoU > this with the box.
        nms_thresh: NMS threshold over the randomly scored candidates.
        fallback_topk: with no candidate, the candidates are this many best-IoU anchors (official:
            4000; ours: 5).
    """

    def __init__(
        self,
        canvas_size: int,
        stride: int = 16,
        sizes=(32, 64, 128, 256),
        ratios=(0.5, 0.75, 1.0, 1.5, 2.0),
        offset: float = 0.0,
        iou_thresh: float = 0.5,
        nms_thresh: float = 0.7,
        fallback_topk: int = 5,
    ):
        if fallback_topk < 1:
            raise ValueError(f"fallback_topk must be >= 1, got {fallback_topk}")
        self.anchors = make_anchors(canvas_size, stride, sizes, ratios, offset)
        # Coordinate rows and areas, so the IoU of one box with every anchor is a few row ops.
        self._rows = np.ascontiguousarray(self.anchors.T)  # 4 x A
        self._areas = (self._rows[2] - self._rows[0]) * (self._rows[3] - self._rows[1])  # A
        self.iou_thresh = iou_thresh
        self.nms_thresh = nms_thresh
        self.fallback_topk = fallback_topk

    @classmethod
    def from_config(cls, cfg) -> "AnchorBoxSampler":
        b = cfg.INPUT.BOX_AUG
        return cls(
            canvas_size=cfg.INPUT.CANVAS_SIZE,
            stride=b.ANCHOR_STRIDE,
            sizes=tuple(b.ANCHOR_SIZES),
            ratios=tuple(b.ANCHOR_RATIOS),
            offset=b.ANCHOR_OFFSET,
            iou_thresh=b.IOU_THRESH,
            nms_thresh=b.NMS_THRESH,
            fallback_topk=b.FALLBACK_TOPK,
        )

    def ious(self, box) -> np.ndarray:
        """IoU of every anchor with ``box`` (4,); returns (A,). ``box_iou`` for one box, faster."""
        x1, y1, x2, y2 = (np.float32(v) for v in box)
        ax1, ay1, ax2, ay2 = self._rows
        w = np.minimum(ax2, x2)
        w -= np.maximum(ax1, x1)
        np.maximum(w, 0, out=w)
        h = np.minimum(ay2, y2)
        h -= np.maximum(ay1, y1)
        np.maximum(h, 0, out=h)
        inter = w * h  # A
        union = self._areas + (x2 - x1) * (y2 - y1) - inter  # A
        return inter / np.maximum(union, np.float32(1e-9))

    def candidates(self, box) -> np.ndarray:
        """Indices of the anchors with IoU > iou_thresh to ``box``."""
        return np.flatnonzero(self.ious(box) > self.iou_thresh)

    def survivors(self, box, rng: np.random.Generator) -> np.ndarray:
        """Indices of the anchors one is drawn from: the candidates of ``box`` (4,), or the
        ``fallback_topk`` best-overlapping anchors when there is none, after NMS over random
        scores."""
        ious = self.ious(box)
        cand = np.flatnonzero(ious > self.iou_thresh)
        if not len(cand):
            cand = np.argsort(-ious, kind="stable")[: self.fallback_topk]
        scores = rng.random(len(cand), dtype=np.float32)
        return cand[nms(self.anchors[cand], scores, self.nms_thresh)]

    def __call__(self, box, rng: np.random.Generator) -> np.ndarray:
        """The augmented box for ``box`` (4,) XYXY, a survivor drawn uniformly; (4,) float32."""
        keep = self.survivors(box, rng)
        return self.anchors[keep[rng.integers(len(keep))]].copy()
