from .build import build_evaluator, inference_dir
from .coco import COCOEvaluator
from .evaluator import DatasetEvaluator, inference_on_dataset
from .instance_discrimination import build_heldout_batch, instance_discrimination_accuracy
from .results import format_results_table, print_results_table, save_results_json
from .voc import PascalVOCDetectionEvaluator

__all__ = [
    "COCOEvaluator",
    "DatasetEvaluator",
    "PascalVOCDetectionEvaluator",
    "build_evaluator",
    "build_heldout_batch",
    "format_results_table",
    "inference_dir",
    "inference_on_dataset",
    "instance_discrimination_accuracy",
    "print_results_table",
    "save_results_json",
]
