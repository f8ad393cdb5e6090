"""Geometry-sensitive dense features and keypoint matching.

features.py (single layer / hypercolumn), heads/ (probabilistic introspection, AnchorNet; the
DENSE_HEAD_REGISTRY), warps.py (homography + thin-plate spline), datasets/ (PF-PASCAL, PF-WILLOW,
SPair-71k, synthetic warps, labelled images), matching.py, pck.py, evaluate.py, trainer.py
(DenseTrainer on insloc's Trainer).
"""

from .heads import DENSE_HEAD_REGISTRY
from .model import DenseModel, build_dense_model

__all__ = ["DENSE_HEAD_REGISTRY", "DenseModel", "build_dense_model"]
