"""VGG-19 with batch norm (Simonyan & Zisserman 2015), as Revisiting SSL evaluated it.

Five conv blocks of 2, 2, 4, 4, 4 3x3 convs (BN, ReLU) with 64, 128, 256, 512, 512 channels,
each ended by a 2x2 max-pool; taps "block1".."block5" after the pools. fc6 and fc7 (4096) are 1x1
convs here, applied at every position before the global pooling (the network is fully
convolutional so that the same trunk runs on 32-pixel and 224-pixel inputs); "pre-logits" is fc7.
"""

import torch
from torch import nn

from .taps import PRE_LOGITS, TappedTrunk, conv_bn_relu, init_conv_weights

_CONVS_PER_BLOCK = (2, 2, 4, 4, 4)


class VGG19BN(TappedTrunk):
    """Args:
    width: channels of block1 (64); blocks 2-5 have 2, 4, 8, 8 times as many.
    fc_dim: channels of fc6 and fc7 (4096).
    Taps: "block1".."block5", "fc6", "pre-logits" (fc7).
    """

    def __init__(self, width: int = 64, fc_dim: int = 4096):
        super().__init__()
        channels = 3
        for i, (n, mult) in enumerate(zip(_CONVS_PER_BLOCK, (1, 2, 4, 8, 8))):
            layers = []
            for _ in range(n):
                layers.append(conv_bn_relu(channels, width * mult, 3))
                channels = width * mult
            layers.append(nn.MaxPool2d(2, 2))
            self.add_module(f"block{i + 1}", nn.Sequential(*layers))
        self.fc6 = conv_bn_relu(channels, fc_dim, 1)
        self.fc7 = conv_bn_relu(fc_dim, fc_dim, 1)
        self.out_channels = fc_dim
        self.strides = {PRE_LOGITS: 32}
        init_conv_weights(self)

    def named_stages(self):
        stages = [(f"block{i}", getattr(self, f"block{i}")) for i in range(1, 6)]
        return stages + [("fc6", self.fc6), (PRE_LOGITS, self.fc7)]

    def forward(self, x: torch.Tensor):
        """Args: x: N x 3 x H x W, H and W >= 32. Returns: {"pre-logits": N x fc_dim x h x w}."""
        return super().forward(x)
