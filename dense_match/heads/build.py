"""The dense-head registry: ``DENSE.HEAD`` -> a class with ``from_config(cfg, in_channels)``.

Contract: ``head(features)`` maps N x C x h x w features to ``{"desc": N x D x h x w}``
(L2-normalised per location) and optionally ``"sigma"`` (N x 1 x h x w, positive inverse
confidence); ``head.losses(extract, batch)`` returns a dict of scalar "loss*" terms, where
``extract(images_uint8)`` gives the features of N x 3 x H x W images and ``batch`` is what the
head's training dataset yields (``head.TRAIN_DATA``: "warp_pairs" or "labelled_images").
"""

from fvcore.common.registry import Registry
from torch import nn

DENSE_HEAD_REGISTRY = Registry("DENSE_HEAD")
DENSE_HEAD_REGISTRY.__doc__ = __doc__


def build_dense_head(cfg, in_channels: int) -> nn.Module:
    return DENSE_HEAD_REGISTRY.get(cfg.DENSE.HEAD).from_config(cfg, in_channels)
