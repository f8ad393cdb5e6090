"""Networks: backbones, RoI pooling, heads, the pretext methods (MoCo, InsLoc) and the detectors."""

from .backbone import BACKBONE_REGISTRY, build_backbone
from .build import META_ARCH_REGISTRY, build_model
from .detection import GeneralizedRCNN
from .insloc import InsLoc, RoIEncoder
from .moco import GlobalEncoder, MoCo

__all__ = [
    "BACKBONE_REGISTRY",
    "META_ARCH_REGISTRY",
    "GeneralizedRCNN",
    "GlobalEncoder",
    "InsLoc",
    "MoCo",
    "RoIEncoder",
    "build_backbone",
    "build_model",
]
