"""Pick a dataset's evaluator from its metadata (``"evaluator": "coco" | "voc"``)."""

import logging
import os

from .coco import COCOEvaluator
from .voc import PascalVOCDetectionEvaluator

logger = logging.getLogger("insloc.evaluation")

EVALUATORS = ("coco", "voc")


def inference_dir(cfg, dataset_name: str) -> str:
    """``OUTPUT_DIR/inference/<dataset>``: where a dataset's raw detections are written."""
    return os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)


def build_evaluator(cfg, dataset_name: str, metadata: dict, output_dir=None, records=None):
    """The evaluator of ``dataset_name``.

    Args:
        metadata: the dataset's metadata; "evaluator" chooses the class.
        output_dir: where ``coco_instances_results.json`` goes; None: :func:`inference_dir`.
        records: the dataset's records, the ground truth of VOC and of COCO without a json_file
            (the test loader's ``dataset.records``). None: loaded again by name from the dataset
            catalog when needed.
    """
    kind = metadata.get("evaluator")
    if kind not in EVALUATORS:
        raise ValueError(
            f"dataset {dataset_name!r}: metadata evaluator = {kind!r}; expected one of {EVALUATORS}"
        )
    if output_dir is None:
        output_dir = inference_dir(cfg, dataset_name)
    needs_records = kind == "voc" or not metadata.get("json_file")
    if records is None and needs_records:
        records = _load_records(cfg, dataset_name)
    if kind == "voc":
        return PascalVOCDetectionEvaluator(dataset_name, records, metadata, output_dir=output_dir)
    return COCOEvaluator(dataset_name, metadata, records=records, output_dir=output_dir)


def _load_records(cfg, dataset_name: str) -> list:
    # Imported here: the evaluators themselves work on records from anywhere.
    from insloc.data.detection import get_detection_dataset

    logger.info("Loading the ground truth of %s from the dataset catalog", dataset_name)
    records, _ = get_detection_dataset(dataset_name, cfg)
    return records
