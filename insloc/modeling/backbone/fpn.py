"""ResNet + FPN with torchvision's names (``body``, ``fpn``): P2-P5, and P6 for detectors."""

from collections import OrderedDict
from typing import Dict

import torch
from torch import nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from ..norm import norm_layer
from .resnet import ResNet


class ResNetFPN(nn.Module):
    """A 4-stage ResNet and an FPN on its four stages, as torchvision's ``BackboneWithFPN``.

    The state dict matches ``fasterrcnn_resnet50_fpn_v2().backbone`` for R50, 256 channels and BN
    (``body.*``, ``fpn.inner_blocks.*``, ``fpn.layer_blocks.*``).

    Args:
        trunk: a 4-stage :class:`ResNet`.
        out_channels: channels of every output level.
        norm: normalisation of the lateral and output convs.
        p6: also output P6, a max-pool of P5 with kernel 1 and stride 2 (the RPN's extra level in
            detectron2's and torchvision's detectors; no parameters).

    Attributes:
        out_channels: channels of every output level.
        strides: {"p2": 4, "p3": 8, "p4": 16, "p5": 32} (and "p6": 64).
        size_divisibility: 32; the detectors pad images to a multiple so every level halves
            exactly (P5's stride).
    """

    def __init__(self, trunk: ResNet, out_channels: int = 256, norm: str = "BN", p6: bool = False):
        super().__init__()
        if trunk.num_stages != 4:
            raise ValueError(f"ResNetFPN needs a 4-stage trunk, got {trunk.num_stages} stages")
        names = {f"layer{i}": f"p{i + 1}" for i in range(1, 5)}
        self.body = IntermediateLayerGetter(trunk, return_layers=names)
        c5 = trunk.out_channels
        in_channels = [c5 // 8, c5 // 4, c5 // 2, c5]
        self.fpn = FeaturePyramidNetwork(
            in_channels,
            out_channels,
            extra_blocks=LastLevelMaxPool() if p6 else None,
            norm_layer=norm_layer(norm),
        )
        self.out_channels = out_channels
        self.strides = {f"p{i}": 2**i for i in range(2, 7 if p6 else 6)}
        self.size_divisibility = 32

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Args: x: N x 3 x H x W. Returns: OrderedDict p2..p5(, p6): N x C x H/s x W/s."""
        out = OrderedDict(self.fpn(self.body(x)))
        if "pool" in out:  # torchvision's name for the max-pooled level
            out["p6"] = out.pop("pool")
        return out
