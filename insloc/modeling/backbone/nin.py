"""RotNet's network-in-network for CIFAR (Gidaris et al., ICLR 2018).

Blocks of three convs, each conv followed by BN and ReLU: block1 5x5 192, 1x1 160, 1x1 96, then a
3x3/2 max-pool; block2 5x5 192, 1x1 192, 1x1 192, then a 3x3/2 average pool; every further block
3x3 192, 1x1 192, 1x1 192 at the same resolution. The paper compares 3, 4 and 5 blocks (best
rotation features: block2 of the 4-block net). ``width`` scales every conv (192 in the paper).
"""

from torch import nn

from .taps import PRE_LOGITS, TappedTrunk, conv_bn_relu, init_conv_weights


class NIN(TappedTrunk):
    """Args:
    num_blocks: 3, 4 or 5 (RotNet's NIN3/4/5).
    width: 192 in the paper; block1's 1x1 convs have 5/6 and 1/2 of it.
    Taps: "block1".."block{num_blocks}" and "pre-logits" (the last block's map).
    """

    def __init__(self, num_blocks: int = 4, width: int = 192):
        super().__init__()
        if num_blocks < 3:
            raise ValueError(f"NIN needs at least 3 blocks (RotNet's smallest), got {num_blocks}")
        c1, c2 = max(1, round(width * 160 / 192)), max(1, width // 2)
        self.block1 = nn.Sequential(
            conv_bn_relu(3, width, 5),
            conv_bn_relu(width, c1, 1),
            conv_bn_relu(c1, c2, 1),
            nn.MaxPool2d(3, 2, 1),
        )
        self.block2 = nn.Sequential(
            conv_bn_relu(c2, width, 5),
            conv_bn_relu(width, width, 1),
            conv_bn_relu(width, width, 1),
            nn.AvgPool2d(3, 2, 1),
        )
        for i in range(3, num_blocks + 1):
            block = nn.Sequential(
                conv_bn_relu(width, width, 3),
                conv_bn_relu(width, width, 1),
                conv_bn_relu(width, width, 1),
            )
            self.add_module(f"block{i}", block)
        self.num_blocks = num_blocks
        self.out_channels = width
        self.strides = {PRE_LOGITS: 4}
        init_conv_weights(self)

    def named_stages(self):
        stages = [(f"block{i}", getattr(self, f"block{i}")) for i in range(1, self.num_blocks + 1)]
        return stages + [(PRE_LOGITS, nn.Identity())]
