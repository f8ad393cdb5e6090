"""ResNet trunks with torchvision's module names, built from torchvision's own blocks.

``build_resnet(50, 64, "BN")`` has exactly the parameter and buffer names and shapes of
``torchvision.models.resnet50()`` without ``fc``, so a pretrained trunk loads into torchvision
detectors by name. ``width`` scales every stage (the stem and res2 have ``width`` channels) so tests
can build tiny trunks. ``features(x, taps)`` reads the map after the stem and every stage by name
("stem", "block1".."block4", "pre-logits"), for linear probes; ``last_relu=False`` drops the ReLU
after the last residual sum (Revisiting SSL's "(-)" variants), keeping every name.
"""

from typing import Dict, Tuple, Type, Union

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

from ..norm import convert_to_frozen_bn, norm_layer
from .taps import PRE_LOGITS, TappedTrunk

Block = Type[Union[BasicBlock, Bottleneck]]

_STAGE_BLOCKS = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


def _block_spec(depth: int) -> Tuple[Block, Tuple[int, ...]]:
    if depth not in _STAGE_BLOCKS:
        raise ValueError(
            f"ResNet depth {depth} is not supported: expected one of {sorted(_STAGE_BLOCKS)}"
        )
    return _STAGE_BLOCKS[depth]


class _BottleneckNoFinalReLU(Bottleneck):
    """torchvision's Bottleneck without the ReLU after the residual sum (same parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out)) + identity


class _BasicBlockNoFinalReLU(BasicBlock):
    """torchvision's BasicBlock without the ReLU after the residual sum (same parameters)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out)) + identity


_NO_FINAL_RELU = {Bottleneck: _BottleneckNoFinalReLU, BasicBlock: _BasicBlockNoFinalReLU}


def make_stage(
    block: Block,
    in_channels: int,
    planes: int,
    num_blocks: int,
    stride: int,
    norm: str,
    last_relu: bool = True,
):
    """One ResNet stage as torchvision's ``_make_layer`` builds it (stride in the 3x3 conv).

    ``last_relu=False`` builds the last block without its final ReLU.
    """
    make_norm = norm_layer(norm)
    if make_norm is None:
        raise ValueError(
            "a ResNet needs a normalisation: norm must be 'BN', 'SyncBN', 'FrozenBN' or 'GN'"
        )
    out_channels = planes * block.expansion
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            make_norm(out_channels),
        )
    blocks = [block(in_channels, planes, stride, downsample, norm_layer=make_norm)]
    blocks += [block(out_channels, planes, norm_layer=make_norm) for _ in range(1, num_blocks)]
    if not last_relu:
        last = _NO_FINAL_RELU[block](out_channels, planes, norm_layer=make_norm)
        if num_blocks == 1:
            last = _NO_FINAL_RELU[block](
                in_channels, planes, stride, downsample, norm_layer=make_norm
            )
        blocks[-1] = last
    stage = nn.Sequential(*blocks)
    _init_weights(stage)
    return stage


def _init_weights(module: nn.Module) -> None:
    """torchvision's ResNet initialisation (``zero_init_residual=False``)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


class ResNet(TappedTrunk):
    """Stem (``conv1``, ``bn1``, ``relu``, ``maxpool``), stages ``layer1``..``layer{num_stages}``.

    Taps: "stem", "block1".."block{num_stages}" and, for the whole trunk, "pre-logits" (the map of
    block4 itself: ResNet v1 has no layer between the last block and the pooling).

    Attributes:
        out_feature: name of the output map, "res{num_stages + 1}" (detectron2's stage names).
        out_channels: channels of that map.
        strides: {out_feature: stride in input pixels}.
    """

    def __init__(
        self,
        depth: int = 50,
        width: int = 64,
        norm: str = "BN",
        num_stages: int = 4,
        last_relu: bool = True,
    ):
        super().__init__()
        block, num_blocks = _block_spec(depth)
        if not 1 <= num_stages <= 4:
            raise ValueError(f"num_stages must be in 1..4, got {num_stages}")
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(norm)(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        _init_weights(self)
        channels = width
        for i in range(num_stages):
            stage = make_stage(
                block,
                channels,
                width * 2**i,
                num_blocks[i],
                1 if i == 0 else 2,
                norm,
                last_relu=last_relu or i < num_stages - 1,
            )
            self.add_module(f"layer{i + 1}", stage)
            channels = width * 2**i * block.expansion
        self.num_stages = num_stages
        self.out_feature = f"res{num_stages + 1}"
        self.out_channels = channels
        self.strides = {self.out_feature: 2 ** (num_stages + 1)}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Args: x: N x 3 x H x W. Returns: {out_feature: N x out_channels x H/s x W/s}."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # x: N x width x H/4 x W/4
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return {self.out_feature: x}

    def named_stages(self):
        stages = [("stem", lambda x: self.maxpool(self.relu(self.bn1(self.conv1(x)))))]
        stages += [
            (f"block{i + 1}", getattr(self, f"layer{i + 1}")) for i in range(self.num_stages)
        ]
        if self.num_stages == 4:
            stages.append((PRE_LOGITS, nn.Identity()))
        return stages


def build_resnet(
    depth: int = 50, width: int = 64, norm: str = "BN", num_stages: int = 4, last_relu: bool = True
) -> ResNet:
    """A ResNet trunk; depth 50 width 64 has the names and shapes of torchvision's resnet50 - fc."""
    return ResNet(depth=depth, width=width, norm=norm, num_stages=num_stages, last_relu=last_relu)


def build_res5(depth: int = 50, width: int = 64, norm: str = "BN") -> nn.Sequential:
    """The last stage alone (torchvision's ``layer4``, first block stride 2): the C4 RoI head.

    Input: M x C4 x h x w with C4 the channels of ``build_resnet(..., num_stages=3)``; output
    M x (8 * width * expansion) x h/2 x w/2.
    """
    block, num_blocks = _block_spec(depth)
    return make_stage(block, width * 4 * block.expansion, width * 8, num_blocks[3], 2, norm)


def freeze_stages(trunk: nn.Module, freeze_at: int) -> None:
    """detectron2's ``MODEL.BACKBONE.FREEZE_AT``: 0 freezes nothing, 1 the stem, k >= 2 the stem and
    res2..res{k}. Frozen parts get no gradient and their batch norms become ``FrozenBatchNorm2d``.

    Args:
        trunk: a :class:`ResNet`, or any module holding its children by name (``conv1``, ``bn1``,
            ``layer1``, ...; e.g. ``ResNetFPN.body``). Stages it does not hold are skipped (a C4
            trunk has no res5).
        freeze_at: 0..5.
    """
    if not 0 <= freeze_at <= 5:
        raise ValueError(f"freeze_at must be in 0..5 (detectron2's FREEZE_AT), got {freeze_at}")
    names = ["conv1", "bn1"] if freeze_at >= 1 else []
    names += [f"layer{i}" for i in range(1, freeze_at) if hasattr(trunk, f"layer{i}")]
    for name in names:
        part = getattr(trunk, name)
        for p in part.parameters():
            p.requires_grad_(False)
        setattr(trunk, name, convert_to_frozen_bn(part))
