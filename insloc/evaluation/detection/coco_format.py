"""COCO json formats shared by the evaluators: per-image predictions, results files, ground truth.

A *prediction* is the compact, picklable form of one model output that evaluators keep and gather
across processes: ``{"image_id", "height", "width", "boxes": float32 N x 4 XYXY (original pixels),
"scores": float32 N, "classes": int64 N (contiguous), "masks": [N RLE dicts] (Mask R-CNN only)}``.

Category ids in COCO files are the dataset's own ids: the inverse of the metadata's
``thing_dataset_id_to_contiguous_id`` when it has one (COCO-format data), else contiguous id + 1
(VOC, synthetic scenes: 1..C in ``thing_classes`` order, COCO's 1-based convention).
"""

import json
import logging
import os

import numpy as np
import pycocotools.mask as mask_util

from insloc.utils.file_io import atomic_write_text

logger = logging.getLogger("insloc.evaluation")

RESULTS_FILE = "coco_instances_results.json"


def dataset_category_ids(metadata: dict) -> list:
    """Dataset category id of every contiguous class id: ``ids[c]`` for class ``c``."""
    num_classes = len(metadata["thing_classes"])
    mapping = metadata.get("thing_dataset_id_to_contiguous_id")
    if not mapping:
        return list(range(1, num_classes + 1))
    inverse = {int(contiguous): int(dataset_id) for dataset_id, contiguous in mapping.items()}
    if sorted(inverse) != list(range(num_classes)):
        raise ValueError(
            f"metadata thing_dataset_id_to_contiguous_id maps to {sorted(inverse)}; expected each "
            f"of 0..{num_classes - 1} once (one per thing_classes entry)"
        )
    return [inverse[c] for c in range(num_classes)]


def plain_image_id(image_id):
    """A numpy integer id as a Python int (json cannot write numpy scalars); others unchanged."""
    return image_id.item() if isinstance(image_id, np.generic) else image_id


def encode_mask(mask: np.ndarray) -> dict:
    """COCO RLE of one H x W binary mask, ``counts`` as str so it goes to json as it is."""
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("utf-8")
    return rle


def prediction_from_output(sample: dict, output: dict) -> dict:
    """The compact prediction of one image from a test sample and the model's output for it."""
    boxes = output["boxes"].detach().cpu().numpy().astype(np.float32).reshape(-1, 4)
    prediction = {
        "image_id": plain_image_id(sample["image_id"]),
        "height": int(sample["height"]),
        "width": int(sample["width"]),
        "boxes": boxes,  # N x 4 XYXY, original pixels
        "scores": output["scores"].detach().cpu().numpy().astype(np.float32).reshape(-1),
        "classes": output["classes"].detach().cpu().numpy().astype(np.int64).reshape(-1),
    }
    if "masks" in output:
        masks = output["masks"].detach().cpu().numpy()  # N x H x W
        expected = (len(boxes), prediction["height"], prediction["width"])
        if masks.shape != expected:
            raise ValueError(
                f"image {sample['image_id']!r}: masks of shape {masks.shape}; expected {expected} "
                "(one per box, at the original image size)"
            )
        # RLE now: full-image masks of a whole dataset would not fit in memory.
        prediction["masks"] = [encode_mask(m) for m in masks]
    return prediction


def predictions_to_coco_results(predictions: list, category_ids: list) -> list:
    """COCO results entries (as detectron2's ``instances_to_coco_json``), boxes XYWH in pixels.

    Args:
        predictions: from :func:`prediction_from_output`.
        category_ids: from :func:`dataset_category_ids`.
    """
    results = []
    for pred in predictions:
        classes = pred["classes"]
        if classes.size and (classes.min() < 0 or classes.max() >= len(category_ids)):
            raise ValueError(
                f"image {pred['image_id']!r}: predicted class ids {sorted(set(classes.tolist()))}; "
                f"expected 0..{len(category_ids) - 1}"
            )
        xywh = pred["boxes"].copy()  # N x 4, float32 as detectron2 converts it
        xywh[:, 2:] -= xywh[:, :2]
        masks = pred.get("masks")
        for k, (box, score, cls) in enumerate(
            zip(xywh.tolist(), pred["scores"].tolist(), classes.tolist())
        ):
            entry = {
                "image_id": pred["image_id"],
                "category_id": category_ids[cls],
                "bbox": box,
                "score": score,
            }
            if masks is not None:
                entry["segmentation"] = masks[k]
            results.append(entry)
    return results


def write_coco_results(results: list, output_dir: str) -> str:
    """Write ``output_dir/coco_instances_results.json`` atomically; returns its path."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, RESULTS_FILE)
    atomic_write_text(json.dumps(results), path)
    logger.info("Saved %d detections to %s", len(results), path)
    return path


def records_to_coco_dict(records: list, metadata: dict) -> dict:
    """A COCO ground-truth dict from dataset records (detectron2's ``convert_to_coco_dict`` rules).

    Boxes become XYWH; crowd flags stay ``iscrowd``; the area is the polygon area (shoelace) or the
    RLE's pixel count when the annotation has a segmentation, else the box area.
    """
    category_ids = dataset_category_ids(metadata)
    images, annotations = [], []
    for record in records:
        images.append(
            {
                "id": plain_image_id(record["image_id"]),
                "width": int(record["width"]),
                "height": int(record["height"]),
                "file_name": str(record["file_name"]),
            }
        )
        for ann in record.get("annotations", []):
            x1, y1, x2, y2 = (float(v) for v in ann["bbox"])
            entry = {
                "id": len(annotations) + 1,
                "image_id": plain_image_id(record["image_id"]),
                "bbox": [round(x, 3) for x in (x1, y1, x2 - x1, y2 - y1)],
                "category_id": category_ids[int(ann["category_id"])],
                "iscrowd": int(ann.get("iscrowd", 0)),
            }
            segmentation = ann.get("segmentation") or None  # [] is no segmentation either
            if segmentation is None:
                entry["area"] = (x2 - x1) * (y2 - y1)
            elif isinstance(segmentation, dict):
                segmentation = _rle_with_str_counts(segmentation, record)
                entry["area"] = float(mask_util.area(_compressed(segmentation)))
            else:
                segmentation = [[float(v) for v in poly] for poly in segmentation]
                entry["area"] = sum(_polygon_area(poly) for poly in segmentation)
            if segmentation is not None:
                entry["segmentation"] = segmentation
            annotations.append(entry)
    categories = [
        {"id": category_ids[c], "name": name} for c, name in enumerate(metadata["thing_classes"])
    ]
    return {"images": images, "annotations": annotations, "categories": categories}


def _polygon_area(poly: list) -> float:
    x, y = np.asarray(poly[0::2]), np.asarray(poly[1::2])
    return float(0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def _rle_with_str_counts(rle: dict, record: dict) -> dict:
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("utf-8")
    return {"size": list(rle.get("size", [record["height"], record["width"]])), "counts": counts}


def _compressed(rle: dict) -> dict:
    """An uncompressed RLE (counts as a list, COCO's crowd format) in the compressed form."""
    if isinstance(rle["counts"], list):
        return mask_util.frPyObjects(rle, *rle["size"])
    return rle
