"""The backbones: a name in ``MODEL.BACKBONE.NAME`` -> a function ``cfg -> nn.Module``, registered
with :func:`~insloc.config.registry.register_backbone` (the registry is the config layer's, so
that a config's name is checked when it loads).

Contract: the module maps N x 3 x H x W normalised images to a dict of named feature maps and
exposes ``out_channels`` (int, the same for every map) and ``strides`` ({name: stride}); a
detector pads its images to a multiple of ``size_divisibility`` when the backbone has one. A
backbone registered with kind "trunk" is a classification trunk (the pretext tasks take any of
them): it also exposes ``out_feature`` (the name ``forward`` returns), ``tap_names`` and
``features(x, taps)`` (:class:`~insloc.modeling.backbone.taps.TappedTrunk`).
"""

from torch import nn

from ...config.registry import BACKBONE_REGISTRY, register_backbone
from .exemplar_cnn import ExemplarCNN
from .fpn import ResNetFPN
from .nin import NIN
from .resnet import build_resnet
from .resnet_v2 import ResNetV2
from .revnet import RevNet
from .vgg import VGG19BN

__all__ = ["BACKBONE_REGISTRY", "build_backbone", "register_backbone"]

TRUNK = "trunk"  # the kind of the classification trunks
_RESNET_KEYS = ("MODEL.RESNETS.DEPTH", "MODEL.RESNETS.WIDTH")


def _trunk(cfg, num_stages: int, **kwargs):
    r = cfg.MODEL.RESNETS
    return build_resnet(r.DEPTH, r.WIDTH, r.NORM, num_stages=num_stages, **kwargs)


@register_backbone(arch_keys=_RESNET_KEYS)
def resnet_fpn(cfg) -> nn.Module:
    """R-FPN: P2-P5 (InsLoc's recipe), and P6 when the RPN takes it (detectron2's and
    torchvision's detectors: a max-pool of P5, no parameters)."""
    p6 = "p6" in cfg.MODEL.RPN.IN_FEATURES
    return ResNetFPN(_trunk(cfg, 4), cfg.MODEL.FPN.OUT_CHANNELS, cfg.MODEL.FPN.NORM, p6=p6)


@register_backbone(arch_keys=_RESNET_KEYS)
def resnet_c4(cfg) -> nn.Module:
    """Stem + res2-res4, stride 16, output "res4"; res5 is the RoI head (``build_res5``)."""
    return _trunk(cfg, 3)


@register_backbone(TRUNK, arch_keys=_RESNET_KEYS + ("MODEL.RESNETS.LAST_RELU",))
def resnet(cfg) -> nn.Module:
    """The whole trunk (ResNet v1), output "res5" (MoCo v2 pools it globally); MODEL.RESNETS.
    RES5_DILATION 2 keeps res5 at stride 16 (dense introspection), LAST_RELU False is the "(-)"
    variant of the classic pretext tasks."""
    r = cfg.MODEL.RESNETS
    return _trunk(cfg, 4, res5_dilation=r.RES5_DILATION, last_relu=r.LAST_RELU)


@register_backbone(TRUNK, arch_keys=_RESNET_KEYS + ("MODEL.RESNETS.LAST_RELU",))
def resnet_v2(cfg) -> nn.Module:
    """Pre-activation ResNet-50; WIDTH = 16k for Revisiting SSL's widening factor k."""
    r = cfg.MODEL.RESNETS
    return ResNetV2(r.DEPTH, r.WIDTH, r.NORM, last_relu=r.LAST_RELU)


@register_backbone(TRUNK, arch_keys=_RESNET_KEYS + ("MODEL.RESNETS.LAST_RELU",))
def revnet(cfg) -> nn.Module:
    """RevNet-50: ResNet-50 v2 with reversible blocks."""
    r = cfg.MODEL.RESNETS
    return RevNet(r.DEPTH, r.WIDTH, r.NORM, last_relu=r.LAST_RELU)


@register_backbone(TRUNK, arch_keys=("MODEL.VGG.WIDTH", "MODEL.VGG.FC_DIM"))
def vgg19_bn(cfg) -> nn.Module:
    """VGG-19 with BN, fc6/fc7 as 1x1 convs."""
    return VGG19BN(cfg.MODEL.VGG.WIDTH, cfg.MODEL.VGG.FC_DIM)


@register_backbone(TRUNK, arch_keys=("MODEL.NIN.NUM_BLOCKS", "MODEL.NIN.WIDTH"))
def nin(cfg) -> nn.Module:
    """RotNet's CIFAR network-in-network with 3, 4 or 5 blocks."""
    return NIN(cfg.MODEL.NIN.NUM_BLOCKS, cfg.MODEL.NIN.WIDTH)


@register_backbone(TRUNK, arch_keys=("MODEL.EXEMPLAR_CNN.SPEC",))
def exemplar_cnn(cfg) -> nn.Module:
    """An Exemplar-CNN network by its spec, on INPUT.EXEMPLAR.PATCH_SIZE patches."""
    return ExemplarCNN(cfg.MODEL.EXEMPLAR_CNN.SPEC, cfg.INPUT.EXEMPLAR.PATCH_SIZE)


def build_backbone(cfg) -> nn.Module:
    """The backbone ``MODEL.BACKBONE.NAME`` names."""
    name = cfg.MODEL.BACKBONE.NAME
    if name not in BACKBONE_REGISTRY:
        registered = ", ".join(repr(n) for n, _ in BACKBONE_REGISTRY)
        raise ValueError(
            f"MODEL.BACKBONE.NAME = {name!r}: expected a registered one ({registered})"
        )
    return BACKBONE_REGISTRY.get(name)(cfg)
