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
    dilation: int = 1,
    last_relu: bool = True,
):
    """One ResNet stage as torchvision's ``_make_layer`` builds it (stride in the 3x3 conv).

    ``last_relu=False`` builds the last block without its final ReLU.

    ``dilation`` > 1 needs ``stride`` 1 and replaces the stride as torchvision's
    ``replace_stride_with_dilation`` does: the first block keeps dilation 1, the others dilate.
    """
    if dilation > 1 and (stride != 1 or block is not Bottleneck):
        raise ValueError(
            f"a dilated stage (dilation {dilation}) needs stride 1 and bottleneck blocks (depth 50)"
        )
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
    blocks += [
        block(out_channels, planes, dilation=dilation, norm_layer=make_norm)
        for _ in range(1, num_blocks)
    ]
    if not last_relu:
        last = _NO_FINAL_RELU[block]
        if num_blocks == 1:
            blocks[-1] = last(in_channels, planes, stride, downsample, norm_layer=make_norm)
        else:
            blocks[-1] = last(out_channels, planes, dilation=dilation, norm_layer=make_norm)
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

    Args:
        res5_dilation: 2 runs the last stage (res5, ``layer4``) at stride 1 with dilation 2, as the
            dense introspection network does (14 x 14 res5 maps for a 224 input); 1 is the standard
            trunk. The parameter names and shapes are the same either way.
        out_features: stage names ("res2".."res5") to return; default only the last one.
        last_relu: False builds the last block without the ReLU after its residual sum.

    Attributes:
        out_feature: name of the last stage's map, "res{num_stages + 1}" (detectron2's names).
        out_channels: channels of that map.
        channels: {name: channels} of every stage.
        strides: {name: stride in input pixels} of every stage.
    """

    def __init__(
        self,
        depth: int = 50,
        width: int = 64,
        norm: str = "BN",
        num_stages: int = 4,
        res5_dilation: int = 1,
        out_features=None,
        last_relu: bool = True,
    ):
        super().__init__()
        block, num_blocks = _block_spec(depth)
        if not 1 <= num_stages <= 4:
            raise ValueError(f"num_stages must be in 1..4, got {num_stages}")
        if res5_dilation not in (1, 2) or (res5_dilation == 2 and num_stages != 4):
            raise ValueError(f"res5_dilation must be 1, or 2 with 4 stages; got {res5_dilation}")
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = norm_layer(norm)(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        _init_weights(self)
        channels, stride = width, 4
        self.channels, self.strides = {}, {}
        for i in range(num_stages):
            dilation = res5_dilation if i == 3 else 1
            step = 1 if i == 0 or dilation > 1 else 2
            stage = make_stage(
                block,
                channels,
                width * 2**i,
                num_blocks[i],
                step,
                norm,
                dilation=dilation,
                last_relu=last_relu or i < num_stages - 1,
            )
            self.add_module(f"layer{i + 1}", stage)
            channels, stride = width * 2**i * block.expansion, stride * step
            self.channels[f"res{i + 2}"] = channels
            self.strides[f"res{i + 2}"] = stride
        self.num_stages = num_stages
        self.out_feature = f"res{num_stages + 1}"
        self.out_channels = channels
        if out_features is None:
            out_features = (self.out_feature,)
        unknown = [f for f in out_features if f not in self.strides]
        if unknown or not out_features:
            raise ValueError(
                f"unknown ResNet stage(s) {unknown}: expected names among {list(self.strides)}"
            )
        self.out_features = tuple(out_features)
        self.strides = {f: self.strides[f] for f in self.out_features}

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """Args: x: N x 3 x H x W. Returns: {name: N x channels[name] x H/s x W/s} for
        every name in ``out_features``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # x: N x width x H/4 x W/4
        out = {}
        last = max(int(f[3:]) for f in self.out_features) - 1  # stages after it are not run
        for i in range(last):
            x = getattr(self, f"layer{i + 1}")(x)
            if f"res{i + 2}" in self.out_features:
                out[f"res{i + 2}"] = x
        return out

    def named_stages(self):
        stages = [("stem", lambda x: self.maxpool(self.relu(self.bn1(self.conv1(x)))))]
        stages += [
            (f"block{i + 1}", getattr(self, f"layer{i + 1}")) for i in range(self.num_stages)
        ]
        if self.num_stages == 4:
            stages.append((PRE_LOGITS, nn.Identity()))
        return stages


def build_resnet(
    depth: int = 50,
    width: int = 64,
    norm: str = "BN",
    num_stages: int = 4,
    res5_dilation: int = 1,
    out_features=None,
    last_relu: bool = True,
) -> ResNet:
    """A ResNet trunk; depth 50 width 64 has the names and shapes of torchvision's resnet50 - fc.

    ``res5_dilation``, ``out_features`` and ``last_relu``: see :class:`ResNet`.
    """
    return ResNet(
        depth=depth,
        width=width,
        norm=norm,
        num_stages=num_stages,
        res5_dilation=res5_dilation,
        out_features=out_features,
        last_relu=last_relu,
    )


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
