"""Pick a dataset's evaluator from its metadata (``"evaluator": "coco" | "voc"``)."""

import hashlib
import logging
import os
import re

from .coco import COCOEvaluator
from .voc import PascalVOCDetectionEvaluator

logger = logging.getLogger("insloc.evaluation")

EVALUATORS = ("coco", "voc")


def inference_dir(cfg, dataset_name: str) -> str:
    """``OUTPUT_DIR/inference/<folder>``: where a dataset's raw detections are written, always one
    folder under ``OUTPUT_DIR/inference`` (see :func:`inference_folder_name`)."""
    return os.path.join(cfg.OUTPUT_DIR, "inference", inference_folder_name(dataset_name))


def inference_folder_name(dataset_name: str) -> str:
    """A registered name as it is (``voc_2007_test``); a dataset named by its path (``a/b.json``,
    ``/data/b.json:/data/images``) the json's stem and a short hash of the whole name
    (``b_1f2e3d4c``): a plain folder name, different for different paths, never a path that would
    lead outside the folder or into the user's data."""
    if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", dataset_name) and ".json" not in dataset_name:
        return dataset_name
    path = dataset_name.split(".json", 1)[0] if ".json" in dataset_name else dataset_name
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.basename(path.rstrip("/\\")))[:40]
    digest = hashlib.sha1(dataset_name.encode("utf-8")).hexdigest()[:8]
    return f"{stem.lstrip('.') or 'dataset'}_{digest}"


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
