"""Instance masks as polygons: the training samples carry polygons only.

Binary masks (synthetic scenes) and non-crowd RLE segmentations (some COCO-format datasets) are
converted to the outer contours of their regions.
"""

import cv2
import numpy as np
from pycocotools import mask as mask_util

__all__ = ["mask_to_polygons", "segmentation_to_polygons"]


def mask_to_polygons(mask: np.ndarray) -> list:
    """The outer contours of a binary mask as COCO polygons.

    Vertices sit at the centres of boundary pixels (+0.5: pixel (x, y) covers [x, x + 1]), which
    is how COCO's polygons are drawn. A mask whose contours all have fewer than 3 points (a line or
    a dot) gets the rectangle of its pixels instead, so every non-empty mask keeps a polygon.

    Args:
        mask: H x W bool or uint8.
    Returns:
        list of polygons [x0, y0, x1, y1, ...] (floats); empty for an empty mask.
    """
    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = [(c.reshape(-1, 2) + 0.5).ravel().tolist() for c in contours if len(c) >= 3]
    if polygons:
        return polygons
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return []
    x1, y1, x2, y2 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
    return [[x1, y1, x2, y1, x2, y2, x1, y2]]


def segmentation_to_polygons(segmentation) -> list:
    """Polygons of a record's segmentation: polygons as they are, an RLE dict by its contours."""
    if isinstance(segmentation, dict):
        rle = segmentation
        if isinstance(rle["counts"], list):  # uncompressed RLE, as crowd regions are stored
            rle = mask_util.frPyObjects(rle, *rle["size"])
        return mask_to_polygons(mask_util.decode(rle))
    return segmentation
