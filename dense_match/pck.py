"""PCK@alpha: the fraction of transferred keypoints within alpha x L of the ground truth.

Papers differ in L, in the pixels errors are measured in, and in how they average, which makes
published numbers incomparable; every choice is a name here and is printed with every result.

Normalisations L (``NORMS``), all from the target image:
    "image"       max(h, w) of the image;
    "bbox"        max side of the annotated object box;
    "kps"         max side of the tight box around the target's keypoints;
    "kps_padded"  the same box after padding the keypoint array with -1 entries (as evaluators
                  that stored keypoints in fixed-length arrays padded with -1 did, e.g. for
                  PF-WILLOW): its min corner becomes (-1, -1), inflating L.
Pixels (``RESIZES``): "original" image pixels, or "resized" (the square matching input).
Averaging (``AVERAGES``): "per_image" (mean of per-pair PCKs) or "per_keypoint" (all pooled).

A target keypoint that is missing (NaN) or outside its image, or whose source keypoint is, is
excluded and counted; a prediction that is NaN (no mutual match) counts as wrong.
"""

from collections import defaultdict

import numpy as np

__all__ = ["ALPHAS", "AVERAGES", "DEFAULT_PROTOCOL", "NORMS", "RESIZES", "PCKMeter", "norm_size"]

ALPHAS = (0.05, 0.1, 0.15)
NORMS = ("image", "bbox", "kps", "kps_padded")
RESIZES = ("original", "resized")
AVERAGES = ("per_image", "per_keypoint")

# What each dataset's best-known results use (PCK@0.1 anchors in parentheses).
DEFAULT_PROTOCOL = {
    # NCNet 78.9, HPF 84.8, CATs 92.6: image size, original pixels, mean over pairs.
    "pf-pascal": {"norm": "image", "resize": "original", "average": "per_image"},
    # Proposal Flow's protocol, HPF 74.4, SCOT 76.2: keypoint extent of the target.
    "pf-willow": {"norm": "kps", "resize": "original", "average": "per_image"},
    # SPair-71k paper, HPF, CATs: the target object's box.
    "spair-71k": {"norm": "bbox", "resize": "original", "average": "per_image"},
    # Synthetic warps have no box: the image.
    "warp": {"norm": "image", "resize": "original", "average": "per_keypoint"},
}


def norm_size(norm: str, kps: np.ndarray, image_size, bbox=None, pad_value: float = -1.0) -> float:
    """L for one target image.

    Args:
        norm: one of NORMS.
        kps: K x 2 target keypoints (NaN rows are ignored).
        image_size: (h, w).
        bbox: [x1, y1, x2, y2] of the target object (needed for "bbox").
    """
    if norm == "image":
        return float(max(image_size))
    if norm == "bbox":
        if bbox is None:
            raise ValueError("PCK normalisation 'bbox' needs object boxes; this dataset has none")
        return float(max(bbox[2] - bbox[0], bbox[3] - bbox[1]))
    pts = kps[np.isfinite(kps).all(1)]
    if norm == "kps":
        return float((pts.max(0) - pts.min(0)).max()) if len(pts) else float("nan")
    if norm == "kps_padded":
        low = np.minimum(pts.min(0), pad_value) if len(pts) else np.full(2, pad_value)
        return float((pts.max(0) - low).max()) if len(pts) else float("nan")
    raise ValueError(f"unknown PCK normalisation {norm!r}: expected one of {NORMS}")


def visible(kps: np.ndarray, image_size) -> np.ndarray:
    """K bool: finite and inside the image (pixel centres 0..w-1, extent -0.5..w-0.5)."""
    h, w = image_size
    with np.errstate(invalid="ignore"):
        inside = (kps[:, 0] >= -0.5) & (kps[:, 0] <= w - 0.5)
        inside &= (kps[:, 1] >= -0.5) & (kps[:, 1] <= h - 0.5)
    return np.isfinite(kps).all(1) & inside


class PCKMeter:
    """Accumulates PCK over pairs.

    Args:
        alphas: thresholds.
        average: one of AVERAGES.
    """

    def __init__(self, alphas=ALPHAS, average: str = "per_image"):
        if average not in AVERAGES:
            raise ValueError(f"unknown PCK averaging {average!r}: expected one of {AVERAGES}")
        self.alphas = tuple(alphas)
        self.average = average
        self.pairs = defaultdict(list)  # category -> [(correct A, valid)] per pair
        self.excluded = 0
        self.skipped_pairs = 0

    def add(
        self,
        pred: np.ndarray,
        gt: np.ndarray,
        size: float,
        trg_size,
        category: str = "all",
        src_valid: np.ndarray = None,
    ) -> np.ndarray:
        """One pair.

        Args:
            pred: K x 2 predictions (NaN: wrong), gt: K x 2 targets, in the same pixels.
            size: L in those pixels.
            trg_size: (h, w) of the target image in those pixels.
            src_valid: K bool, source keypoints usable (default all).
        Returns:
            K x A bool: correct at each alpha (False for excluded keypoints).
        """
        valid = visible(gt, trg_size)
        if src_valid is not None:
            valid &= src_valid
        self.excluded += int((~valid).sum())
        err = np.linalg.norm(pred - gt, axis=1)  # K
        with np.errstate(invalid="ignore"):
            correct = err[:, None] <= np.asarray(self.alphas)[None] * size  # K x A; NaN -> False
        correct &= valid[:, None]
        if valid.any() and np.isfinite(size) and size > 0:
            self.pairs[category].append((correct.sum(0), int(valid.sum())))
        else:
            self.skipped_pairs += 1
        return correct

    @staticmethod
    def _pck(items, average: str) -> np.ndarray:
        if average == "per_keypoint":
            return sum(c for c, _ in items) / max(sum(n for _, n in items), 1)
        return np.mean([c / n for c, n in items], axis=0)

    def summary(self) -> dict:
        """{"pck@a": %, "per_class": {class: {"pck@a": %}}, "pairs", "keypoints", ...}."""
        items = [x for v in self.pairs.values() for x in v]
        out = {}
        overall = self._pck(items, self.average) if items else np.full(len(self.alphas), np.nan)
        for a, v in zip(self.alphas, overall):
            out[f"pck@{a:g}"] = float(100 * v)
        out["per_class"] = {
            cat: {
                f"pck@{a:g}": float(100 * v)
                for a, v in zip(self.alphas, self._pck(v, self.average))
            }
            for cat, v in sorted(self.pairs.items())
        }
        out["pairs"] = len(items)
        out["keypoints"] = int(sum(n for _, n in items))
        out["excluded_keypoints"] = self.excluded
        out["skipped_pairs"] = self.skipped_pairs
        return out
