"""The pretext-method registry: ``MODEL.META_ARCHITECTURE`` -> a class with ``from_config(cfg)``.

Contract: ``model(batch) -> dict`` whose "loss*" entries are scalar losses to sum and whose other
entries are detached metrics; ``model.encode(images_uint8, boxes=None) -> {level: N x dim}`` gives
L2-normalised query embeddings for evaluation.
"""

from fvcore.common.registry import Registry
from torch import nn

META_ARCH_REGISTRY = Registry("META_ARCH")
META_ARCH_REGISTRY.__doc__ = __doc__


def build_model(cfg) -> nn.Module:
    """The pretraining model of ``cfg``, on the CPU (the engine moves it)."""
    return META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE).from_config(cfg)
