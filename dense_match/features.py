"""Dense features from a ResNet trunk: one stage as it is, or a hypercolumn of several stages.

A hypercolumn takes each stage (optional ReLU, optional 1x1 "PCA" reduction), resamples it
bilinearly to one common stride, L2-normalises it per location and concatenates the stages, so
every stage weighs the same whatever its channel count or activation scale.
"""

from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from insloc.modeling.backbone import ResNet, build_resnet

__all__ = ["DenseFeatures", "build_trunk"]


def build_trunk(cfg, layers: Sequence[str] = None) -> ResNet:
    """The ResNet of ``MODEL.RESNETS`` returning ``layers`` (default ``DENSE.FEATURES.LAYERS``).

    Raises:
        ValueError: a layer name that does not exist; the message lists the valid ones.
    """
    r = cfg.MODEL.RESNETS
    layers = list(cfg.DENSE.FEATURES.LAYERS if layers is None else layers)
    return build_resnet(
        r.DEPTH, r.WIDTH, r.NORM, num_stages=4, res5_dilation=r.RES5_DILATION, out_features=layers
    )


class DenseFeatures(nn.Module):
    """Trunk stages -> one dense map.

    Args:
        trunk: a :class:`ResNet` whose ``out_features`` are the stages to use.
        reduce_dim: hypercolumn only: channels of each stage's 1x1 conv (0: none).
        stride: hypercolumn only: common stride in input pixels.
        relu: hypercolumn only: ReLU on each stage before its reduction.

    Attributes:
        out_channels: channels of the output map.
        stride: its stride in input pixels.
    """

    def __init__(self, trunk: ResNet, reduce_dim: int = 0, stride: int = 8, relu: bool = False):
        super().__init__()
        self.trunk = trunk
        self.layers = list(trunk.out_features)
        self.hypercolumn = len(self.layers) > 1
        self.relu = relu
        if not self.hypercolumn:
            self.reduce = None
            self.out_channels = trunk.channels[self.layers[0]]
            self.stride = trunk.strides[self.layers[0]]
            return
        self.stride = stride
        if reduce_dim:
            self.reduce = nn.ModuleDict(
                {f: nn.Conv2d(trunk.channels[f], reduce_dim, kernel_size=1) for f in self.layers}
            )
            self.out_channels = reduce_dim * len(self.layers)
        else:
            self.reduce = None
            self.out_channels = sum(trunk.channels[f] for f in self.layers)

    @classmethod
    def from_config(cls, cfg, trunk: ResNet = None) -> "DenseFeatures":
        f = cfg.DENSE.FEATURES
        return cls(
            trunk if trunk is not None else build_trunk(cfg),
            reduce_dim=f.REDUCE_DIM,
            stride=f.STRIDE,
            relu=f.RELU,
        )

    def stages(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The raw trunk maps: {name: N x C_name x H/s_name x W/s_name}."""
        return self.trunk(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: N x 3 x H x W normalised images.
        Returns: N x out_channels x H/stride x W/stride (hypercolumn: L2-normalised per stage)."""
        maps = self.trunk(x)
        if not self.hypercolumn:
            return maps[self.layers[0]]  # N x C x H/s x W/s
        size = (x.shape[-2] // self.stride, x.shape[-1] // self.stride)
        parts = []
        for name in self.layers:
            m = maps[name]  # m: N x C_name x H/s_name x W/s_name
            if self.relu:
                m = F.relu(m)
            if self.reduce is not None:
                m = self.reduce[name](m)  # m: N x reduce_dim x H/s_name x W/s_name
            m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
            parts.append(F.normalize(m, dim=1))  # N x C' x H/stride x W/stride, unit per location
        return torch.cat(parts, dim=1)  # N x out_channels x H/stride x W/stride
