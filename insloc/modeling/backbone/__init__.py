"""Backbones: torchvision-named ResNet trunks, R-FPN, and their registry."""

from .build import BACKBONE_REGISTRY, build_backbone
from .fpn import ResNetFPN
from .resnet import ResNet, build_res5, build_resnet, freeze_stages

__all__ = [
    "BACKBONE_REGISTRY",
    "ResNet",
    "ResNetFPN",
    "build_backbone",
    "build_res5",
    "build_resnet",
    "freeze_stages",
]
