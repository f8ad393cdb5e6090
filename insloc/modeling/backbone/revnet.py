"""RevNet-50 (Gomez et al., NeurIPS 2017) as Revisiting SSL used it: ResNet-50 v2's depth and
width with reversible blocks.

A reversible block splits its input channels into halves (x1, x2) and computes
``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)``; the input is recovered exactly as
``x2 = y2 - G(y1)``, ``x1 = y1 - F(x2)``. The first block of every stage changes the resolution and
the channels and is an ordinary pre-activation bottleneck, as in the RevNet paper. Training here
keeps activations as usual (autograd); the memory-saving backward pass that recomputes them from
the outputs is not implemented, it changes no result.
"""

import torch
from torch import nn

from ..norm import get_norm
from .resnet_v2 import ResNetV2


def _residual_fn(channels: int, planes: int, norm: str) -> nn.Sequential:
    """Pre-activation bottleneck residual on half the channels: C/2 -> planes/2 -> C/2."""
    return nn.Sequential(
        get_norm(norm, channels),
        nn.ReLU(inplace=False),
        nn.Conv2d(channels, planes, 1, bias=False),
        get_norm(norm, planes),
        nn.ReLU(inplace=True),
        nn.Conv2d(planes, planes, 3, 1, 1, bias=False),
        get_norm(norm, planes),
        nn.ReLU(inplace=True),
        nn.Conv2d(planes, channels, 1, bias=False),
    )


class ReversibleBlock(nn.Module):
    """``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)`` on the two channel halves; ``inverse`` undoes it.

    Args:
        channels: C, even; F and G each act on C/2 channels.
        planes: bottleneck width of F and G together (each has planes/2).
        norm: normalisation inside F and G.
    """

    def __init__(self, channels: int, planes: int, norm: str = "BN"):
        super().__init__()
        if channels % 2 or planes % 2:
            raise ValueError(
                f"a reversible block needs even channels and planes, got {channels}, {planes}"
            )
        self.f = _residual_fn(channels // 2, planes // 2, norm)
        self.g = _residual_fn(channels // 2, planes // 2, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: N x C x H x W. Returns: N x C x H x W."""
        x1, x2 = x.chunk(2, dim=1)  # N x C/2 x H x W each
        y1 = x1 + self.f(x2)
        y2 = x2 + self.g(y1)
        return torch.cat([y1, y2], dim=1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """The input of ``forward`` from its output (exact up to rounding; BN in eval mode).

        Args: y: N x C x H x W. Returns: N x C x H x W.
        """
        y1, y2 = y.chunk(2, dim=1)  # N x C/2 x H x W each
        x2 = y2 - self.g(y1)
        x1 = y1 - self.f(x2)
        return torch.cat([x1, x2], dim=1)


class RevNet(ResNetV2):
    """RevNet-50: ResNet-50 v2 whose non-downsampling blocks are reversible (same taps)."""

    def _more_blocks(self, channels: int, planes: int, count: int, norm: str) -> list:
        return [ReversibleBlock(channels, planes, norm) for _ in range(count)]
