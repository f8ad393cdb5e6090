"""The dense model: pixel normalisation, trunk features, and an optional registered head."""

import torch
import torch.nn.functional as F
from torch import nn

from insloc.config.registry import register_method

from .features import DenseFeatures
from .heads import build_dense_head
from .weights import load_weights

__all__ = ["DENSE_DEFAULTS", "DenseModel", "build_dense_model"]

# Overrides that make the config defaults (a pretraining recipe) a dense one: what the dense tools
# run without --config-file (random ResNet-50 res5 features).
DENSE_DEFAULTS = ("MODEL.META_ARCHITECTURE", "Dense", "MODEL.BACKBONE.NAME", "resnet")


class DenseModel(nn.Module):
    """uint8 images -> dense descriptors (and sigma when the head predicts it); training losses.

    Args:
        features: the trunk and its single-layer or hypercolumn extraction.
        head: a registered dense head, or None to use the features as they are.
        pixel_mean, pixel_std: RGB normalisation of 0-255 input.
    """

    def __init__(
        self, features: DenseFeatures, head: nn.Module = None, pixel_mean=None, pixel_std=None
    ):
        super().__init__()
        self.features = features
        self.head = head
        mean = pixel_mean or [123.675, 116.28, 103.53]
        std = pixel_std or [58.395, 57.12, 57.375]
        self.register_buffer("pixel_mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_config(cls, cfg) -> "DenseModel":
        features = DenseFeatures.from_config(cfg)
        head = build_dense_head(cfg, features.out_channels) if cfg.DENSE.HEAD else None
        return cls(features, head, list(cfg.MODEL.PIXEL_MEAN), list(cfg.MODEL.PIXEL_STD))

    def extract(self, images: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W uint8 RGB -> N x C x h x w features."""
        x = (images.float() - self.pixel_mean) / self.pixel_std
        return self.features(x)

    def forward(self, batch: dict) -> dict:
        """Training: the head's losses ("loss*") and metrics for a batch of its training data."""
        if self.head is None:
            raise ValueError("DENSE.HEAD is '': there is nothing to train; name a head")
        return self.head.losses(self.extract, batch)

    @torch.no_grad()
    def describe(self, images: torch.Tensor) -> dict:
        """N x 3 x H x W uint8 -> {"desc": N x D x h x w unit vectors, "sigma": N x 1 x h x w}
        ("sigma" only when the head predicts it)."""
        features = self.extract(images)
        if self.head is None:
            return {"desc": F.normalize(features, dim=1)}
        return self.head(features)


def build_dense_model(cfg) -> DenseModel:
    """``DenseModel.from_config`` filled from ``MODEL.WEIGHTS`` when it names a file."""
    model = DenseModel.from_config(cfg)
    if cfg.MODEL.WEIGHTS:
        load_weights(model, cfg.MODEL.WEIGHTS)
    return model


register_method(
    "Dense",
    task="dense matching",
    model=DenseModel,
    arch_keys=(
        "MODEL.RESNETS.RES5_DILATION",
        "DENSE.HEAD",
        "DENSE.FEATURES.LAYERS",
        "DENSE.FEATURES.REDUCE_DIM",
        "DENSE.INTROSPECTION.DIM",
        "DENSE.ANCHORNET.NUM_CLASSES",
        "DENSE.ANCHORNET.NUM_FILTERS",
    ),
    backbones=("resnet",),
)
