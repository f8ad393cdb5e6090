"""ResNet v2 (pre-activation; He et al., ECCV 2016) with Revisiting SSL's widening factor.

Revisiting SSL (Kolesnikov et al., CVPR 2019) widens every layer by k: the stem has 16k channels
and res2's bottleneck 16k, so k = 4 is the standard ResNet-50 (pre-logits 2048) and k = 16 gives
8192. ``width`` here is that stem width (16k). The "(-)" variant drops the final ReLU before the
global pooling (``last_relu=False``).
"""

import torch
from torch import nn

from ..norm import get_norm
from .resnet import _block_spec
from .taps import PRE_LOGITS, TappedTrunk, init_conv_weights


class PreActBottleneck(nn.Module):
    """BN-ReLU-conv1x1, BN-ReLU-conv3x3 (stride), BN-ReLU-conv1x1 (4x planes), plus the shortcut.

    The projection shortcut, when the shape changes, reads the pre-activated input (v2's rule).
    """

    expansion = 4

    def __init__(self, in_channels: int, planes: int, stride: int = 1, norm: str = "BN"):
        super().__init__()
        out_channels = planes * self.expansion
        self.bn1 = get_norm(norm, in_channels)
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn2 = get_norm(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn3 = get_norm(norm, planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: N x C_in x H x W. Returns: N x 4 planes x H/stride x W/stride."""
        pre = self.relu(self.bn1(x))
        identity = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + identity


class ResNetV2(TappedTrunk):
    """Pre-activation ResNet: stem conv 7x7/2 and max-pool, four stages, final BN (and ReLU).

    Args:
        depth: 50 (bottleneck blocks 3, 4, 6, 3).
        width: stem and res2 bottleneck channels, 16k for widening factor k (64 = ResNet-50).
        norm: "BN", "SyncBN" or "GN".
        last_relu: False for the "(-)" variant without the ReLU after the final BN.
    Taps: "stem", "block1".."block4", "pre-logits" (after the final BN and ReLU).
    """

    def __init__(self, depth: int = 50, width: int = 64, norm: str = "BN", last_relu: bool = True):
        super().__init__()
        _, num_blocks = _block_spec(depth)
        if depth != 50:
            raise ValueError(f"ResNet v2 is built with depth 50 only, got {depth}")
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        channels = width
        for i, n in enumerate(num_blocks):
            planes = width * 2**i
            stage = [PreActBottleneck(channels, planes, 1 if i == 0 else 2, norm)]
            channels = planes * PreActBottleneck.expansion
            stage += self._more_blocks(channels, planes, n - 1, norm)
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
        # v2's pre-activation leaves the last block's sum un-normalised: one more BN before pooling
        self.final_bn = get_norm(norm, channels)
        self.final_relu = nn.ReLU(inplace=True) if last_relu else nn.Identity()
        self.out_channels = channels
        self.strides = {PRE_LOGITS: 32}
        init_conv_weights(self)

    def _more_blocks(self, channels: int, planes: int, count: int, norm: str) -> list:
        """The blocks of a stage after its first (RevNet overrides this with reversible ones)."""
        return [PreActBottleneck(channels, planes, 1, norm) for _ in range(count)]

    def named_stages(self):
        stages = [("stem", lambda x: self.maxpool(self.conv1(x)))]
        stages += [(f"block{i}", getattr(self, f"layer{i}")) for i in range(1, 5)]
        stages.append((PRE_LOGITS, lambda x: self.final_relu(self.final_bn(x))))
        return stages
