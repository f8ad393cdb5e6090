"""Evaluation, by job: ``detection/`` (COCO and VOC evaluators of fine-tuned detectors),
``probes/`` (linear probes of frozen trunks, for the pretext tasks) and
``instance_discrimination`` (the held-out check of pretraining). The names below are the public
entry points."""

from .detection import (
    COCOEvaluator,
    DatasetEvaluator,
    PascalVOCDetectionEvaluator,
    build_evaluator,
    format_results_table,
    inference_dir,
    inference_on_dataset,
    print_results_table,
    save_results_json,
)
from .instance_discrimination import build_heldout_batch, instance_discrimination_accuracy
from .probes import (
    PROBES,
    Trunk,
    evaluate_layers,
    extract_features,
    fit_probe,
    load_trunk,
    random_trunk,
)

__all__ = [
    "COCOEvaluator",
    "DatasetEvaluator",
    "PROBES",
    "PascalVOCDetectionEvaluator",
    "Trunk",
    "build_evaluator",
    "build_heldout_batch",
    "evaluate_layers",
    "extract_features",
    "fit_probe",
    "format_results_table",
    "inference_dir",
    "inference_on_dataset",
    "instance_discrimination_accuracy",
    "load_trunk",
    "print_results_table",
    "random_trunk",
    "save_results_json",
]
