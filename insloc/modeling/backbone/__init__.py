"""Backbones: torchvision-named ResNet trunks, R-FPN, and their registry."""

from .build import BACKBONE_REGISTRY, build_backbone
from .exemplar_cnn import ExemplarCNN
from .fpn import ResNetFPN
from .nin import NIN
from .resnet import ResNet, build_res5, build_resnet, freeze_stages
from .resnet_v2 import ResNetV2
from .revnet import ReversibleBlock, RevNet
from .taps import PRE_LOGITS, TappedTrunk
from .vgg import VGG19BN

__all__ = [
    "BACKBONE_REGISTRY",
    "ExemplarCNN",
    "NIN",
    "PRE_LOGITS",
    "ResNet",
    "ResNetFPN",
    "ResNetV2",
    "RevNet",
    "ReversibleBlock",
    "TappedTrunk",
    "VGG19BN",
    "build_backbone",
    "build_res5",
    "build_resnet",
    "freeze_stages",
]
