"""Pascal VOC box AP, computed exactly as detectron2's ``PascalVOCDetectionEvaluator`` computes it.

For each class and each IoU threshold in 0.50, 0.55, ..., 0.95, the class's detections over the
whole test set are ranked by score and matched greedily: a detection's match is the ground-truth
box of its image and class with the highest IoU; above the threshold it is a true positive if that
box is free, a false positive if an earlier detection took it (duplicates), and ignored when that
box is *difficult*; at or below the threshold it is a false positive. Difficult boxes are not
counted among the positives. AP is the VOC07 11-point interpolated precision when the dataset's year
is 2007, else the area under the precision envelope (VOC2010+).

Pixel conventions, as detectron2 (which inherits them from the original ``voc_eval``): the XML boxes
are 1-based inclusive pixel indices, widths are ``x2 - x1 + 1``; the loader stores ``xmin - 1`` and
``ymin - 1`` (continuous coordinates), so the evaluator writes a prediction as ``x1 + 1, y1 + 1, x2,
y2`` with one decimal (and its score with three) and compares it with the XML box under the ``+ 1``
arithmetic. The ground truth is every object as its XML file states it (the records'
``voc_objects``), as the devkit and detectron2 read it: boxes past the image border or starting at
0 are scored unclipped, and boxes the training loader drops are still positives. Records without
``voc_objects`` (VOC-format data from elsewhere) are scored against their annotations, written back
as ``x1 + 1, y1 + 1, x2, y2``.

Reported (percent): ``AP`` (mean over thresholds of the mean over classes), ``AP50``, ``AP75``, and
per class ``AP-<class>`` (mean over thresholds) and ``AP50-<class>``.
"""

import logging
from collections import OrderedDict

import numpy as np

from .coco_format import (
    dataset_category_ids,
    plain_image_id,
    predictions_to_coco_results,
    write_coco_results,
)
from .evaluator import DatasetEvaluator

logger = logging.getLogger("insloc.evaluation")

# IoU thresholds 0.50:0.95, computed as detectron2 computes them (``thresh / 100.0``).
IOU_THRESHOLDS_PERCENT = tuple(range(50, 100, 5))


class PascalVOCDetectionEvaluator(DatasetEvaluator):
    """VOC box AP over IoU 0.50:0.95 of a dataset whose records carry ``difficult`` flags.

    Args:
        dataset_name: for logs.
        records: the dataset's records (the ground truth; every record is an image of the test set).
        metadata: with "thing_classes" and "year" (2007 selects the 11-point metric).
        output_dir: where ``coco_instances_results.json`` goes (None: not written).
    """

    def __init__(self, dataset_name: str, records: list, metadata: dict, output_dir=None):
        if "year" not in metadata or not isinstance(metadata["year"], int):
            raise ValueError(
                f"dataset {dataset_name!r}: VOC evaluation needs metadata 'year' (an int such as "
                f"2007 or 2012), got {metadata.get('year')!r}"
            )
        self.dataset_name = dataset_name
        self.class_names = list(metadata["thing_classes"])
        self.use_07_metric = metadata["year"] == 2007
        self.category_ids = dataset_category_ids(metadata)
        self.output_dir = output_dir
        self.image_ids, self.ground_truth = _ground_truth_by_class(records, len(self.class_names))
        self.reset()

    def evaluate(self) -> dict:
        predictions = self.gather()
        if predictions is None:
            return {}
        if self.output_dir:
            write_coco_results(
                predictions_to_coco_results(predictions, self.category_ids), self.output_dir
            )
        if len(predictions) != len(self.image_ids):
            logger.warning(
                "%s: %d of %d images have predictions; the others count as missed",
                self.dataset_name,
                len(predictions),
                len(self.image_ids),
            )
        logger.info(
            "Evaluating %s with the VOC%s metric at IoU 0.50:0.95 (detectron2's definition, not "
            "the official Matlab code)",
            self.dataset_name,
            "2007 11-point" if self.use_07_metric else "2010+ area",
        )
        detections = _detections_by_class(predictions, self.image_ids, len(self.class_names))
        aps = {t: [] for t in IOU_THRESHOLDS_PERCENT}  # threshold -> AP per class, in percent
        without = [n for n, gt in zip(self.class_names, self.ground_truth) if gt["npos"] == 0]
        if without:
            logger.warning(
                "%s: no non-difficult box of %s; their AP is 0",
                self.dataset_name,
                ", ".join(without),
            )
        thresholds = [t / 100.0 for t in IOU_THRESHOLDS_PERCENT]
        for gt, dets in zip(self.ground_truth, detections):
            curves = voc_eval_class(dets, gt, thresholds, self.use_07_metric)
            for t, (_, _, ap) in zip(IOU_THRESHOLDS_PERCENT, curves):
                aps[t].append(ap * 100)
        mean_ap = {t: np.mean(per_class) for t, per_class in aps.items()}
        results = OrderedDict(
            AP=float(np.mean(list(mean_ap.values()))),
            AP50=float(mean_ap[50]),
            AP75=float(mean_ap[75]),
        )
        for cls, name in enumerate(self.class_names):
            results[f"AP-{name}"] = float(np.mean([aps[t][cls] for t in IOU_THRESHOLDS_PERCENT]))
            results[f"AP50-{name}"] = float(aps[50][cls])
        return {"bbox": dict(results)}


def voc_ap(rec: np.ndarray, prec: np.ndarray, use_07_metric: bool) -> float:
    """AP of a precision/recall curve (in detection rank order).

    VOC07: mean over recall points 0, 0.1, ..., 1 (as ``np.arange(0, 1.1, 0.1)`` gives them, so
    0.3 is 0.30000000000000004) of the best precision at a recall at least that point, 0 if none.
    Else: the area under the monotone precision envelope, summed where recall changes.
    """
    if use_07_metric:
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            reached = rec >= t
            ap = ap + (np.max(prec[reached]) if reached.any() else 0) / 11.0
        return float(ap)
    mrec = np.concatenate(([0.0], rec, [1.0]))
    mpre = np.concatenate(([0.0], prec, [0.0]))
    for i in range(mpre.size - 1, 0, -1):
        mpre[i - 1] = np.maximum(mpre[i - 1], mpre[i])
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def voc_eval_class(detections: dict, gt: dict, iou_thresholds, use_07_metric: bool) -> list:
    """Recall, precision (in rank order) and AP of one class at each IoU threshold.

    Args:
        detections: {"image": int N (image index), "score": float N, "box": N x 4} in VOC file
            coordinates (see the module docstring), in gathering order.
        gt: {"box": G x 4 VOC file coordinates, "difficult": bool G, "image": int G, "npos": int}.
        iou_thresholds: a detection matches when its IoU is strictly above the threshold.
    Returns:
        [(rec (N,), prec (N,), ap (fraction; 0 when the class has no non-difficult box))] for each
        threshold.
    """
    # The same (unstable) sort as detectron2, so equal scores keep its order too.
    order = np.argsort(-detections["score"])
    images = detections["image"][order]
    # The best gt box of each detection does not depend on the threshold: find it once.
    ovmax, jmax = _best_overlaps(detections["box"][order], images, gt)
    return [_curve(ovmax, jmax, gt, t, use_07_metric) for t in iou_thresholds]


def _curve(ovmax, jmax, gt: dict, iou_threshold: float, use_07_metric: bool):
    nd = len(ovmax)
    tp, fp = np.zeros(nd), np.zeros(nd)
    above = ovmax > iou_threshold
    fp[~above] = 1.0
    candidates = np.nonzero(above)[0]  # rank order
    matched = jmax[candidates]  # index into the class's gt boxes
    keep = ~gt["difficult"][matched]  # a match on a difficult box is neither TP nor FP
    candidates, matched = candidates[keep], matched[keep]
    # The first (highest ranked) detection to reach a box takes it; later ones are duplicates.
    _, first = np.unique(matched, return_index=True)
    tp[candidates[first]] = 1.0
    fp[candidates] = 1.0 - tp[candidates]
    fp, tp = np.cumsum(fp), np.cumsum(tp)
    if gt["npos"] == 0:
        return np.zeros(nd), np.zeros(nd), 0.0
    rec = tp / float(gt["npos"])
    # eps: the first detections may all sit on difficult boxes (tp + fp == 0)
    prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    return rec, prec, voc_ap(rec, prec, use_07_metric)


def _best_overlaps(boxes: np.ndarray, images: np.ndarray, gt: dict):
    """Per detection: its highest IoU with a gt box of its image (-inf if none) and that box.

    The IoU is the ``+ 1`` pixel arithmetic of ``voc_eval``, term for term, so values are bitwise
    those of detectron2.
    """
    nd = len(boxes)
    ovmax, jmax = np.full(nd, -np.inf), np.zeros(nd, dtype=np.int64)
    if nd == 0 or len(gt["image"]) == 0:
        return ovmax, jmax
    gt_by_image = _group(gt["image"])
    for image, dets in _group(images).items():
        gt_idx = gt_by_image.get(image)
        if gt_idx is None:
            continue
        bb = boxes[dets][:, None, :]  # D x 1 x 4
        g = gt["box"][gt_idx][None, :, :]  # 1 x G x 4
        ixmin, iymin = np.maximum(g[..., 0], bb[..., 0]), np.maximum(g[..., 1], bb[..., 1])
        ixmax, iymax = np.minimum(g[..., 2], bb[..., 2]), np.minimum(g[..., 3], bb[..., 3])
        iw = np.maximum(ixmax - ixmin + 1.0, 0.0)
        ih = np.maximum(iymax - iymin + 1.0, 0.0)
        inters = iw * ih  # D x G
        uni = (
            (bb[..., 2] - bb[..., 0] + 1.0) * (bb[..., 3] - bb[..., 1] + 1.0)
            + (g[..., 2] - g[..., 0] + 1.0) * (g[..., 3] - g[..., 1] + 1.0)
            - inters
        )
        overlaps = inters / uni  # D x G
        ovmax[dets] = overlaps.max(axis=1)
        jmax[dets] = gt_idx[overlaps.argmax(axis=1)]
    return ovmax, jmax


def _group(keys: np.ndarray) -> dict:
    """{key: positions holding it, in increasing order}."""
    order = np.argsort(keys, kind="stable")
    bounds = np.flatnonzero(np.diff(keys[order])) + 1
    return {int(keys[part[0]]): part for part in np.split(order, bounds)}


def _ground_truth_by_class(records: list, num_classes: int):
    """Image ids (in record order) and, per class, its boxes in VOC file coordinates."""
    image_ids, index = [], {}
    per_class = [{"box": [], "difficult": [], "image": []} for _ in range(num_classes)]
    for record in records:
        image_id = plain_image_id(record["image_id"])
        if image_id in index:
            raise ValueError(f"VOC evaluation: image_id {image_id!r} appears in two records")
        index[image_id] = len(image_ids)
        image_ids.append(image_id)
        for box, cls, difficult in _objects_as_written(record):
            if not 0 <= cls < num_classes:
                raise ValueError(
                    f"VOC evaluation: image {image_id!r} has category_id {cls}; "
                    f"expected 0..{num_classes - 1}"
                )
            per_class[cls]["box"].append(box)
            per_class[cls]["difficult"].append(difficult)
            per_class[cls]["image"].append(index[image_id])
    ground_truth = []
    for gt in per_class:
        difficult = np.array(gt["difficult"], dtype=bool)
        ground_truth.append(
            {
                "box": np.array(gt["box"], dtype=np.float64).reshape(-1, 4),
                "difficult": difficult,
                "image": np.array(gt["image"], dtype=np.int64),
                "npos": int((~difficult).sum()),
            }
        )
    return image_ids, ground_truth


def _objects_as_written(record: dict):
    """(box in VOC file coordinates, class, difficult) of every object of a record: the XML's
    boxes as written (``voc_objects``, kept by the VOC loader), else rebuilt from the annotations
    (``x1 + 1, y1 + 1, x2, y2``) for records of other origins."""
    if "voc_objects" in record:
        objects = record["voc_objects"]
        return [
            ([float(v) for v in o["bbox"]], int(o["category_id"]), bool(o["difficult"]))
            for o in objects
        ]
    out = []
    for ann in record.get("annotations", []):
        x1, y1, x2, y2 = (float(v) for v in ann["bbox"])
        out.append(
            ([x1 + 1.0, y1 + 1.0, x2, y2], int(ann["category_id"]), bool(ann.get("difficult", 0)))
        )
    return out


def _detections_by_class(predictions: list, image_ids: list, num_classes: int) -> list:
    """Per class, its detections in VOC file coordinates, rounded as detectron2's text lines are."""
    index = {image_id: i for i, image_id in enumerate(image_ids)}
    for pred in predictions:
        if pred["image_id"] not in index:
            raise ValueError(
                f"VOC evaluation: prediction for image {pred['image_id']!r}, which is not in "
                "the dataset"
            )
        classes = pred["classes"]
        if classes.size and (classes.min() < 0 or classes.max() >= num_classes):
            raise ValueError(
                f"VOC evaluation: image {pred['image_id']!r} has predicted classes "
                f"{sorted(set(classes.tolist()))}; expected 0..{num_classes - 1}"
            )
    images = np.concatenate(
        [np.full(len(p["scores"]), index[p["image_id"]], dtype=np.int64) for p in predictions]
        + [np.zeros(0, dtype=np.int64)]
    )
    classes = np.concatenate([p["classes"] for p in predictions] + [np.zeros(0, dtype=np.int64)])
    scores = np.concatenate([p["scores"] for p in predictions] + [np.zeros(0, np.float32)])
    boxes = np.concatenate([p["boxes"] for p in predictions] + [np.zeros((0, 4), np.float32)])
    boxes = boxes.astype(np.float32)  # N x 4
    boxes[:, :2] += np.float32(1.0)  # the inverse of the loader's -1, in float32 as detectron2
    # detectron2 scores the text it writes: "{score:.3f} {x1:.1f} {y1:.1f} {x2:.1f} {y2:.1f}"
    scores, boxes = round_like_text(scores, 3), round_like_text(boxes, 1)
    return [
        {"image": images[classes == c], "score": scores[classes == c], "box": boxes[classes == c]}
        for c in range(num_classes)
    ]


def round_like_text(values: np.ndarray, decimals: int) -> np.ndarray:
    """``float(f"{v:.{decimals}f}")`` of float32 values, vectorised and bit-identical.

    A float32 has 24 significant bits, so ``v * 10**decimals`` (decimals <= 3 adds at most 10 bits)
    is exact in float64; ``rint`` then rounds half to even as Python's formatting does, and the
    division is correctly rounded as Python's parsing is.
    """
    if values.dtype != np.float32 or decimals > 3:
        raise ValueError("round_like_text is exact for float32 values and up to 3 decimals")
    scale = 10.0**decimals
    return np.rint(values.astype(np.float64) * scale) / scale
