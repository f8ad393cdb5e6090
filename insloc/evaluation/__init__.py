from .features import Trunk, extract_features, load_trunk, random_trunk
from .instance_discrimination import build_heldout_batch, instance_discrimination_accuracy
from .linear_probe import PROBES, evaluate_layers, fit_probe

__all__ = [
    "PROBES",
    "Trunk",
    "build_heldout_batch",
    "evaluate_layers",
    "extract_features",
    "fit_probe",
    "instance_discrimination_accuracy",
    "load_trunk",
    "random_trunk",
]
