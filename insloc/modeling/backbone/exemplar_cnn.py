"""The Exemplar-CNN networks (Dosovitskiy et al., NeurIPS 2014 / TPAMI 2016), named by their spec.

"64c5-64c5-128f" (small), "64c5-128c5-256c5-512f" (medium), "92c5-256c5-512c5-1024f" (large):
``<n>c5`` is a 5x5 conv with n channels and ReLU, the first two followed by a 3x3/2 max-pool;
``<n>f`` is a fully connected layer with ReLU on the flattened map of a ``patch_size`` input (32 in
the paper). The fc is a conv whose kernel covers that map, so the net also slides over larger
inputs (the linear probe pools its output). Taps "conv1".."convK" and "pre-logits" (the fc).
"""

import math
import re

import torch
from torch import nn

from .taps import PRE_LOGITS, TappedTrunk, init_conv_weights

EXEMPLAR_ARCHS = ("64c5-64c5-128f", "64c5-128c5-256c5-512f", "92c5-256c5-512c5-1024f")


def parse_spec(spec: str):
    """``"64c5-128c5-256c5-512f"`` -> ([(64, 5), (128, 5), (256, 5)], 512)."""
    parts = spec.split("-")
    convs = [re.fullmatch(r"(\d+)c(\d+)", p) for p in parts[:-1]]
    fc = re.fullmatch(r"(\d+)f", parts[-1])
    if len(parts) < 2 or fc is None or any(m is None for m in convs):
        raise ValueError(
            f"Exemplar-CNN spec {spec!r}: expected convs '<n>c<k>' then one '<n>f', "
            f"e.g. {EXEMPLAR_ARCHS[1]!r}"
        )
    return [(int(m[1]), int(m[2])) for m in convs], int(fc[1])


class ExemplarCNN(TappedTrunk):
    """Args:
    spec: the network string (see the module docstring); widths can be scaled for tests.
    patch_size: training input side (32), fixing the fc's receptive field.
    """

    def __init__(self, spec: str = "64c5-128c5-256c5-512f", patch_size: int = 32):
        super().__init__()
        convs, fc_dim = parse_spec(spec)
        channels, side = 3, patch_size
        for i, (n, k) in enumerate(convs):
            layers = [nn.Conv2d(channels, n, k, 1, k // 2), nn.ReLU(inplace=True)]
            if i < 2:
                layers.append(nn.MaxPool2d(3, 2, 1))
                side = math.ceil(side / 2)
            self.add_module(f"conv{i + 1}", nn.Sequential(*layers))
            channels = n
        self.num_convs = len(convs)
        self.fc = nn.Sequential(nn.Conv2d(channels, fc_dim, side), nn.ReLU(inplace=True))
        self.patch_size = patch_size
        self.out_channels = fc_dim
        self.strides = {PRE_LOGITS: 4}
        init_conv_weights(self)

    def named_stages(self):
        stages = [(f"conv{i}", getattr(self, f"conv{i}")) for i in range(1, self.num_convs + 1)]
        return stages + [(PRE_LOGITS, self.fc)]

    def forward(self, x: torch.Tensor):
        """Args: x: N x 3 x H x W, H and W >= patch_size. Returns: {"pre-logits": N x D x h x w}."""
        if min(x.shape[-2:]) < self.patch_size:
            raise ValueError(
                f"Exemplar-CNN input {tuple(x.shape[-2:])} is smaller than its patch size "
                f"{self.patch_size}"
            )
        return super().forward(x)
