"""Pretraining networks: backbones, RoI pooling, heads and the pretext methods (MoCo, InsLoc,
RotNet, Jigsaw, RelativeLoc, Exemplar)."""

from .backbone import BACKBONE_REGISTRY, build_backbone
from .build import META_ARCH_REGISTRY, build_model
from .exemplar import Exemplar
from .insloc import InsLoc, RoIEncoder
from .jigsaw import Jigsaw
from .moco import GlobalEncoder, MoCo
from .relative_loc import RelativeLoc
from .rotation import RotNet

__all__ = [
    "BACKBONE_REGISTRY",
    "META_ARCH_REGISTRY",
    "Exemplar",
    "GlobalEncoder",
    "InsLoc",
    "Jigsaw",
    "MoCo",
    "RelativeLoc",
    "RoIEncoder",
    "RotNet",
    "build_backbone",
    "build_model",
]
