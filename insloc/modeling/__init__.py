"""Networks: backbones, RoI pooling, heads, the pretext methods (MoCo, InsLoc, RotNet, Jigsaw,
RelativeLoc, Exemplar) and the detectors. Importing it registers each method and backbone."""

from .backbone import BACKBONE_REGISTRY, build_backbone
from .build import build_model
from .detection import GeneralizedRCNN
from .exemplar import Exemplar
from .insloc import InsLoc, RoIEncoder
from .jigsaw import Jigsaw
from .moco import GlobalEncoder, MoCo
from .relative_loc import RelativeLoc
from .rotation import RotNet

__all__ = [
    "BACKBONE_REGISTRY",
    "Exemplar",
    "GeneralizedRCNN",
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
