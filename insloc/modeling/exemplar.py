"""Exemplar-CNN (Dosovitskiy et al., NeurIPS 2014): discriminate surrogate classes, each made of
transformed copies of one seed patch (``insloc.data.exemplar``).

Two losses: "softmax", the paper's classification over all surrogate classes (one output per
class: it does not scale past some 10^4 classes), and "triplet", which Revisiting SSL used to scale
it to ImageNet: copies of the same seed are pulled together and copies of other seeds pushed at
least a margin further away, here with the hardest positive and negative of the batch for each
anchor (batch-hard mining).
"""

from typing import Dict

import torch
import torch.nn.functional as F
from torch import nn

from ..config.registry import register_method
from ..data.exemplar import ExemplarDataset
from .pretext_base import (
    PRETEXT_BACKBONE_KIND,
    PretextModel,
    check_pretext_config,
    classification_outputs,
)


def batch_hard_triplet_loss(embeddings: torch.Tensor, labels: torch.Tensor, margin: float):
    """Mean over anchors of ``relu(d(a, hardest positive) - d(a, hardest negative) + margin)``.

    Args:
        embeddings: M x D, L2-normalised.
        labels: M class indices; every class present at least twice.
        margin: the margin.
    Returns:
        (loss, fraction of anchors whose hardest negative is already beyond the margin).
    """
    dist = torch.cdist(embeddings, embeddings)  # dist: M x M
    same = labels[:, None] == labels[None, :]  # M x M
    eye = torch.eye(len(labels), dtype=torch.bool, device=labels.device)  # M x M
    hardest_pos = dist.masked_fill(~same | eye, float("-inf")).amax(dim=1)  # M
    hardest_neg = dist.masked_fill(same, float("inf")).amin(dim=1)  # M
    violation = hardest_pos - hardest_neg + margin  # M
    return F.relu(violation).mean(), (violation <= 0).float().mean().detach()


class Exemplar(PretextModel):
    """Args:
    num_classes: surrogate classes (softmax loss).
    loss: "softmax" or "triplet".
    embed_dim, margin: the triplet variant's embedding size and margin.
    backbone, pixel_mean, pixel_std, channels_last: see :class:`PretextModel`.
    """

    def __init__(
        self,
        *,
        num_classes: int = 8000,
        loss: str = "softmax",
        embed_dim: int = 128,
        margin: float = 0.5,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if loss not in ("softmax", "triplet"):
            raise ValueError(f"Exemplar loss {loss!r}: expected 'softmax' or 'triplet'")
        self.loss = loss
        self.margin = margin
        out_dim = num_classes if loss == "softmax" else embed_dim
        self.head = nn.Linear(self.backbone.out_channels, out_dim)

    @classmethod
    def from_config(cls, cfg) -> "Exemplar":
        e = cfg.MODEL.EXEMPLAR
        return cls(
            num_classes=e.NUM_CLASSES,
            loss=e.LOSS,
            embed_dim=e.EMBED_DIM,
            margin=e.MARGIN,
            **cls.base_kwargs(cfg),
        )

    def forward(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """
        Args:
            batch: "images": uint8 N x K x 3 x P x P (K copies of N surrogate classes);
                "labels": N x K class indices.
        Returns:
            softmax: "loss_cls", "accuracy"; triplet: "loss_triplet", "satisfied" (fraction of
            anchors meeting the margin), all but the loss detached.
        """
        x = self.head(self.embed(batch["images"].flatten(0, 1)))  # N K x out_dim
        labels = batch["labels"].flatten()  # N K
        if self.loss == "softmax":
            return classification_outputs(x, labels)
        loss, satisfied = batch_hard_triplet_loss(
            F.normalize(x.float(), dim=1), labels, self.margin
        )
        return {"loss_triplet": loss, "satisfied": satisfied}


def validate(cfg, fail) -> None:
    """Exemplar's keys: the seed patch fits the crop, a triplet has two copies to compare."""
    check_pretext_config(cfg, fail)
    crop, patch = cfg.INPUT.PRETEXT.CROP_SIZE, cfg.INPUT.EXEMPLAR.PATCH_SIZE
    if cfg.INPUT.EXEMPLAR.SEED_SIZE > crop:
        fail("INPUT.EXEMPLAR.SEED_SIZE", f"a side <= INPUT.PRETEXT.CROP_SIZE ({crop})")
    if cfg.MODEL.EXEMPLAR.LOSS == "triplet" and cfg.INPUT.EXEMPLAR.COPIES < 2:
        fail("INPUT.EXEMPLAR.COPIES", "at least 2 with MODEL.EXEMPLAR.LOSS 'triplet'")
    if cfg.MODEL.BACKBONE.NAME == "exemplar_cnn" and patch < 16:
        fail("INPUT.EXEMPLAR.PATCH_SIZE", "at least 16 for the Exemplar-CNN networks")


register_method(
    "Exemplar",
    task="pretext",
    model=Exemplar,
    dataset=ExemplarDataset,
    validate=validate,
    arch_keys=("MODEL.EXEMPLAR.NUM_CLASSES", "MODEL.EXEMPLAR.LOSS", "MODEL.EXEMPLAR.EMBED_DIM"),
    backbone_kind=PRETEXT_BACKBONE_KIND,
)
