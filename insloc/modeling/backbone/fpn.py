"""ResNet + FPN with torchvision's names (``body``, ``fpn``), outputs P2-P5."""

from collections import OrderedDict
from typing import Dict

import torch
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops import FeaturePyramidNetwork

from ..norm import norm_layer
from .resnet import ResNet


class ResNetFPN(nn.Module):
    """A 4-stage ResNet and an FPN on its four stages, as torchvision's ``BackboneWithFPN``.

    The state dict matches ``fasterrcnn_resnet50_fpn_v2().backbone`` for R50, 256 channels and BN
    (``body.*``, ``fpn.inner_blocks.*``, ``fpn.layer_blocks.*``); the P6 max-pool of torchvision's
    detectors has no parameters and is not computed here.

    Attributes:
        out_channels: channels of every output level.
        strides: {"p2": 4, "p3": 8, "p4": 16, "p5": 32}.
    """

    def __init__(self, trunk: ResNet, out_channels: int = 256, norm: str = "BN"):
        super().__init__()
        if trunk.num_stages != 4:
            raise ValueError(f"ResNetFPN needs a 4-stage trunk, got {trunk.num_stages} stages")
        names = {f"layer{i}": f"p{i + 1}" for i in range(1, 5)}
        self.body = IntermediateLayerGetter(trunk, return_layers=names)
        c5 = trunk.out_channels
        in_channels = [c5 // 8, c5 // 4, c5 // 2, c5]
        self.fpn = FeaturePyramidNetwork(in_channels, out_channels, norm_layer=norm_layer(norm))
        self.out_channels = out_channels
        self.strides = {f"p{i}": 2**i for i in range(2, 6)}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Args: x: N x 3 x H x W. Returns: OrderedDict p2..p5, N x out_channels x H/s x W/s."""
        return OrderedDict(self.fpn(self.body(x)))
