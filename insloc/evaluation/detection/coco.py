"""COCO box and mask AP with pycocotools, as detectron2's ``COCOEvaluator`` reports them.

``AP`` is averaged over IoU 0.50:0.95 (step 0.05) and 101 recall points, ``AP50``/``AP75`` at
one IoU, ``APs``/``APm``/``APl`` over objects of area < 32², 32²..96², > 96² pixels, with at most
100 detections per image; crowd regions are neither positives nor penalised. ``AP-<class>`` is the
class's AP (area "all", 100 detections). Every image of the ground truth is scored, as detectron2
scores every image of its json: the objects of an image that was not run count as misses (so a
test set must be run whole; the fine-tuning trainer refuses one with images missing on disk).
"""

import contextlib
import copy
import io
import logging
import os

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from .coco_format import (
    dataset_category_ids,
    predictions_to_coco_results,
    records_to_coco_dict,
    write_coco_results,
)
from .evaluator import DatasetEvaluator

logger = logging.getLogger("insloc.evaluation")

METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl")  # the order of COCOeval.stats


class COCOEvaluator(DatasetEvaluator):
    """pycocotools ``bbox`` (and ``segm`` when the model predicts masks) evaluation.

    Args:
        dataset_name: for logs.
        metadata: "thing_classes", and "json_file" (the COCO annotation file, then the ground
            truth) with "thing_dataset_id_to_contiguous_id", or no json_file (the ground truth is
            built from ``records``, category ids contiguous + 1).
        records: the dataset's records; needed only without a json_file.
        output_dir: where ``coco_instances_results.json`` goes (None: not written).
    """

    def __init__(self, dataset_name: str, metadata: dict, records=None, output_dir=None):
        self.dataset_name = dataset_name
        self.class_names = list(metadata["thing_classes"])
        self.category_ids = dataset_category_ids(metadata)
        self.output_dir = output_dir
        self.coco_gt = _load_ground_truth(dataset_name, metadata, records)
        known = set(self.coco_gt.getCatIds())
        missing = [i for i in self.category_ids if i not in known]
        if missing:
            raise ValueError(
                f"dataset {dataset_name!r}: category ids {missing} of the metadata are not in its "
                f"ground truth (categories {sorted(known)})"
            )
        self.reset()

    def evaluate(self) -> dict:
        predictions = self.gather()
        if predictions is None:
            return {}
        if not predictions:
            logger.warning("%s: no image was run; nothing to evaluate", self.dataset_name)
            return {}
        results = predictions_to_coco_results(predictions, self.category_ids)
        if self.output_dir:
            write_coco_results(results, self.output_dir)
        if not self.coco_gt.getAnnIds():
            logger.warning(
                "%s: the ground truth has no annotation; not evaluated", self.dataset_name
            )
            return {}
        run = list(dict.fromkeys(p["image_id"] for p in predictions))
        unknown = [i for i in run if i not in self.coco_gt.imgs]
        if unknown:
            raise ValueError(
                f"{self.dataset_name}: predictions for image ids {unknown[:5]} that its ground "
                "truth does not have"
            )
        image_ids = list(self.coco_gt.getImgIds())
        if len(run) < len(image_ids):
            logger.warning(
                "%s: %d of the %d images of the ground truth were run; the objects of the others "
                "count as misses",
                self.dataset_name,
                len(run),
                len(image_ids),
            )
        tasks = ["bbox"]
        if any("masks" in p for p in predictions):
            if all("segmentation" in a for a in self.coco_gt.dataset["annotations"]):
                tasks.append("segm")
            else:
                logger.warning(
                    "%s: the model predicts masks but the ground truth has boxes only; no segm AP",
                    self.dataset_name,
                )
        return {task: self._evaluate_task(results, task, image_ids) for task in tasks}

    def _evaluate_task(self, results: list, task: str, image_ids: list) -> dict:
        if not results:
            logger.warning("%s: the model made no detection; %s AP is 0", self.dataset_name, task)
            return dict({m: 0.0 for m in METRICS}, **{f"AP-{n}": 0.0 for n in self.class_names})
        results = copy.deepcopy(results)  # loadRes adds fields to each entry
        if task == "segm":
            # With a bbox, loadRes takes the box area as the object's area, which changes APs/m/l:
            # drop it so mask AP uses mask areas (as detectron2 does).
            for r in results:
                r.pop("bbox")
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            coco_dt = self.coco_gt.loadRes(results)
            coco_eval = COCOeval(self.coco_gt, coco_dt, task)
            coco_eval.params.imgIds = image_ids
            coco_eval.params.catIds = sorted(set(self.category_ids))
            coco_eval.evaluate()
            coco_eval.accumulate()
        summary = io.StringIO()
        with contextlib.redirect_stdout(summary):
            coco_eval.summarize()
        logger.info(
            "%s %s (pycocotools):\n%s", self.dataset_name, task, summary.getvalue().rstrip()
        )
        metrics = {
            m: float(coco_eval.stats[i] * 100) if coco_eval.stats[i] >= 0 else float("nan")
            for i, m in enumerate(METRICS)
        }
        # precision: iou x recall x class x area range x max dets; area "all", 100 detections.
        precision = coco_eval.eval["precision"]
        position = {cat: k for k, cat in enumerate(coco_eval.params.catIds)}
        for name, cat in zip(self.class_names, self.category_ids):
            p = precision[:, :, position[cat], 0, -1]
            p = p[p > -1]
            metrics[f"AP-{name}"] = float(np.mean(p) * 100) if p.size else float("nan")
        return metrics


def _load_ground_truth(dataset_name: str, metadata: dict, records) -> COCO:
    json_file = metadata.get("json_file")
    if json_file:
        if not os.path.isfile(json_file):
            raise FileNotFoundError(f"dataset {dataset_name!r}: json_file {json_file} not found")
        if not metadata.get("thing_dataset_id_to_contiguous_id"):
            raise ValueError(
                f"dataset {dataset_name!r}: metadata has json_file {json_file} but no "
                "thing_dataset_id_to_contiguous_id to map its category ids"
            )
        with contextlib.redirect_stdout(io.StringIO()):
            return COCO(json_file)
    if records is None:
        raise ValueError(
            f"dataset {dataset_name!r}: COCO evaluation needs metadata 'json_file' or the records"
        )
    coco = COCO()
    coco.dataset = records_to_coco_dict(records, metadata)
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco
