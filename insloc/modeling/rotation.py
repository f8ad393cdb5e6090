"""RotNet (Gidaris, Singh & Komodakis, ICLR 2018): predict which rotation an image underwent.

Every image of the batch comes in all R rotations (``insloc.data.rotation``); the trunk embeds all
N x R views, global average pooling and one linear layer give R logits, and the loss is the
cross-entropy with the rotation's index. The paper's CIFAR classifier is exactly this (global
pooling and a linear layer on NIN's last block).
"""

from typing import Dict

import torch
from torch import nn

from ..config.registry import register_method
from ..data.rotation import RotationDataset
from .pretext_base import (
    PRETEXT_BACKBONE_KIND,
    PretextModel,
    check_pretext_config,
    classification_outputs,
)


class RotNet(PretextModel):
    """Args:
    num_rotations: R, the number of classes (MODEL.ROTATION.ANGLES).
    backbone, pixel_mean, pixel_std, channels_last: see :class:`PretextModel`.
    """

    def __init__(self, *, num_rotations: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.head = nn.Linear(self.backbone.out_channels, num_rotations)

    @classmethod
    def from_config(cls, cfg) -> "RotNet":
        return cls(num_rotations=len(cfg.MODEL.ROTATION.ANGLES), **cls.base_kwargs(cfg))

    def forward(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """
        Args:
            batch: "images": uint8 N x R x 3 x S x S (all rotations of each image); "labels":
                N x R rotation indices.
        Returns:
            "loss_cls": cross-entropy over the N x R views; "accuracy": detached top-1.
        """
        images = batch["images"].flatten(0, 1)  # N R x 3 x S x S
        logits = self.head(self.embed(images))  # N R x R
        return classification_outputs(logits, batch["labels"].flatten())


def validate(cfg, fail) -> None:
    """RotNet's keys: the rotations are distinct multiples of 45 degrees."""
    check_pretext_config(cfg, fail)
    angles = list(cfg.MODEL.ROTATION.ANGLES)
    if len(angles) < 2 or len(set(a % 360 for a in angles)) != len(angles):
        fail("MODEL.ROTATION.ANGLES", "at least two distinct angles (degrees, modulo 360)")
    if any(a % 45 for a in angles):
        fail("MODEL.ROTATION.ANGLES", "multiples of 45 degrees")


register_method(
    "RotNet",
    task="pretext",
    model=RotNet,
    dataset=RotationDataset,
    validate=validate,
    arch_keys=("MODEL.ROTATION.ANGLES",),
    backbone_kind=PRETEXT_BACKBONE_KIND,
)
