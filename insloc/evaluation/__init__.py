from .build import build_evaluator, inference_dir
from .coco import COCOEvaluator
from .evaluator import DatasetEvaluator, inference_on_dataset
from .features import Trunk, extract_features, load_trunk, random_trunk
from .instance_discrimination import build_heldout_batch, instance_discrimination_accuracy
from .linear_probe import PROBES, evaluate_layers, fit_probe
from .results import format_results_table, print_results_table, save_results_json
from .voc import PascalVOCDetectionEvaluator

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
