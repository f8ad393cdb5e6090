"""Pick a dataset's evaluator from its metadata (``"evaluator": "coco" | "voc"``)."""

import os

from .coco import COCOEvaluator
from .voc import PascalVOCDetectionEvaluator

EVALUATORS = ("coco", "voc")


def inference_dir(cfg, dataset_name: str) -> str:
    """``OUTPUT_DIR/inference/<dataset>``: where a dataset's raw detections are written."""
    return os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)


def build_evaluator(cfg, dataset_name: str, metadata: dict, output_dir=None, records=None):
    """The evaluator of ``dataset_name``.

    Args:
        metadata: the dataset's metadata; "evaluator" chooses the class.
        output_dir: where ``coco_instances_results.json`` goes; None: :func:`inference_dir`.
        records: the dataset's records, the ground truth (required for VOC, and for COCO without a
            json_file).
    """
    kind = metadata.get("evaluator")
    if kind not in EVALUATORS:
        raise ValueError(
            f"dataset {dataset_name!r}: metadata evaluator = {kind!r}; expected one of {EVALUATORS}"
        )
    if output_dir is None:
        output_dir = inference_dir(cfg, dataset_name)
    if kind == "voc":
        if records is None:
            raise ValueError(
                f"dataset {dataset_name!r}: VOC evaluation needs the dataset's records"
            )
        return PascalVOCDetectionEvaluator(dataset_name, records, metadata, output_dir=output_dir)
    return COCOEvaluator(dataset_name, metadata, records=records, output_dir=output_dir)
