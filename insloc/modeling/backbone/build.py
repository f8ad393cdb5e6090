"""The backbone registry: a name in ``MODEL.BACKBONE.NAME`` -> a function ``cfg -> nn.Module``.

Contract: the module maps N x 3 x H x W normalised images to a dict of named feature maps and
exposes ``out_channels`` (int, the same for every map) and ``strides`` ({name: stride}).
"""

from fvcore.common.registry import Registry
from torch import nn

from .fpn import ResNetFPN
from .resnet import build_resnet

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = __doc__


def _trunk(cfg, num_stages: int, **kwargs):
    r = cfg.MODEL.RESNETS
    return build_resnet(r.DEPTH, r.WIDTH, r.NORM, num_stages=num_stages, **kwargs)


@BACKBONE_REGISTRY.register()
def resnet_fpn(cfg) -> nn.Module:
    """R-FPN: P2-P5 (InsLoc's recipe)."""
    return ResNetFPN(_trunk(cfg, 4), cfg.MODEL.FPN.OUT_CHANNELS, cfg.MODEL.FPN.NORM)


@BACKBONE_REGISTRY.register()
def resnet_c4(cfg) -> nn.Module:
    """Stem + res2-res4, stride 16, output "res4"; res5 is the RoI head (``build_res5``)."""
    return _trunk(cfg, 3)


@BACKBONE_REGISTRY.register()
def resnet(cfg) -> nn.Module:
    """The whole trunk, output "res5" (MoCo v2 pools it globally); MODEL.RESNETS.RES5_DILATION 2
    keeps res5 at stride 16 (dense introspection)."""
    return _trunk(cfg, 4, res5_dilation=cfg.MODEL.RESNETS.RES5_DILATION)


def build_backbone(cfg) -> nn.Module:
    return BACKBONE_REGISTRY.get(cfg.MODEL.BACKBONE.NAME)(cfg)
