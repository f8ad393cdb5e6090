"""Pretraining networks: backbones, RoI pooling, heads and the pretext methods (MoCo, InsLoc)."""

from .backbone import BACKBONE_REGISTRY, build_backbone
from .build import META_ARCH_REGISTRY, build_model
from .insloc import InsLoc, RoIEncoder
from .moco import GlobalEncoder, MoCo

__all__ = [
    "BACKBONE_REGISTRY",
    "META_ARCH_REGISTRY",
    "GlobalEncoder",
    "InsLoc",
    "MoCo",
    "RoIEncoder",
    "build_backbone",
    "build_model",
]
