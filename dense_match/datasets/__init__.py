"""Matching benchmarks (PF-PASCAL, PF-WILLOW, SPair-71k, synthetic warps) and head training data."""

from .build import build_matching_dataset, build_train_dataset
from .labelled import LabelledImages
from .pairs import PairDataset
from .pf_pascal import VOC_CLASSES, PFPascal
from .pf_willow import PFWillow
from .spair import DIFFICULTY_FLAGS, SPair71k
from .warp_pairs import WarpPairs, WarpTrainingPairs

__all__ = [
    "DIFFICULTY_FLAGS",
    "LabelledImages",
    "PFPascal",
    "PFWillow",
    "PairDataset",
    "SPair71k",
    "VOC_CLASSES",
    "WarpPairs",
    "WarpTrainingPairs",
    "build_matching_dataset",
    "build_train_dataset",
]
