"""Linear probes of frozen trunks (the classic pretext tasks' evaluation): trunks read from any
weight file, pooled features per layer, the probes, and their report."""

from .features import Trunk, extract_features, load_trunk, random_trunk
from .linear_probe import PROBES, evaluate_layers, fit_probe

__all__ = [
    "PROBES",
    "Trunk",
    "evaluate_layers",
    "extract_features",
    "fit_probe",
    "load_trunk",
    "random_trunk",
]
