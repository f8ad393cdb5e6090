"""Detection evaluation: the evaluator contract and inference loop, COCO and VOC evaluators, the
COCO json formats they share, and results tables / results.json."""

from .build import build_evaluator, inference_dir
from .coco import COCOEvaluator
from .evaluator import DatasetEvaluator, inference_on_dataset
from .results import format_results_table, print_results_table, save_results_json
from .voc import PascalVOCDetectionEvaluator

__all__ = [
    "COCOEvaluator",
    "DatasetEvaluator",
    "PascalVOCDetectionEvaluator",
    "build_evaluator",
    "format_results_table",
    "inference_dir",
    "inference_on_dataset",
    "print_results_table",
    "save_results_json",
]
