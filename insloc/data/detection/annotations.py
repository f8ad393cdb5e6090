"""The bad-input rule for boxes, shared by every dataset loader, and the counts it logs.

Rule (docs/data.md, "Detection data", states it to users):

- a box with x2 <= x1 or y2 <= y1 as given by the file is *degenerate*: dropped and counted;
- a box reaching outside the image is clipped to [0, width] x [0, height]; one left empty by the
  clipping lies wholly *outside* the image: dropped and counted (clipped boxes are counted too);
- an image listed by the dataset but absent on disk is dropped and counted (and named in the
  metadata's ``missing_images``: a test set with one is refused, since it is scored whole).

Everything else that makes a file unusable as a dataset (unknown VOC class names, a json that is
not COCO) is a one-line error naming the file, raised by the loaders themselves.
"""

import logging
from collections import Counter

__all__ = ["LoadCounts", "clip_box"]

logger = logging.getLogger("insloc.data")


def clip_box(box, height: int, width: int):
    """Apply the rule above to one XYXY box in absolute pixels.

    Args:
        box: [x1, y1, x2, y2].
        height, width: the image size.
    Returns:
        (box, outcome): the box as a list of 4 floats (None when dropped), and one of "kept",
        "clipped", "degenerate" or "outside".
    """
    x1, y1, x2, y2 = (float(v) for v in box)
    width, height = float(width), float(height)
    if not (x2 > x1 and y2 > y1):  # also catches NaN
        return None, "degenerate"
    c = [min(max(x1, 0.0), width), min(max(y1, 0.0), height)]
    c += [min(max(x2, 0.0), width), min(max(y2, 0.0), height)]
    if not (c[2] > c[0] and c[3] > c[1]):
        return None, "outside"
    return c, ("kept" if c == [x1, y1, x2, y2] else "clipped")


class LoadCounts:
    """What a loader kept, dropped and clipped, logged in one line per dataset."""

    _LABELS = (
        ("degenerate", "degenerate boxes dropped (x2 <= x1 or y2 <= y1)"),
        ("outside", "boxes outside the image dropped"),
        ("clipped", "boxes clipped to the image"),
        ("missing_image", "images absent on disk dropped"),
        ("bad_segmentation", "instances without a valid polygon dropped"),
    )

    def __init__(self):
        self.counts = Counter()
        self.missing_images = []  # their paths: a test set must have none (scored whole)

    def add(self, outcome: str, n: int = 1) -> None:
        if outcome != "kept":
            self.counts[outcome] += n

    def add_missing_image(self, file_name: str) -> None:
        self.add("missing_image")
        self.missing_images.append(file_name)

    def log(self, name: str, records: list) -> None:
        """One info line with the totals, and a warning line when anything was dropped."""
        instances = sum(len(r["annotations"]) for r in records)
        logger.info("dataset %s: %d images, %d instances", name, len(records), instances)
        notes = [f"{self.counts[k]} {text}" for k, text in self._LABELS if self.counts[k]]
        if notes:
            logger.warning("dataset %s: %s", name, "; ".join(notes))
