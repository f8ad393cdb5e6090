"""Jigsaw puzzles (Noroozi & Favaro, ECCV 2016): which permutation shuffled the 3x3 tiles.

The tiles of each image (``insloc.data.jigsaw``, in permuted order) go through one shared trunk;
each tile's pooled features pass a shared fc, the 9 results are concatenated in their shuffled
order, and a hidden fc and the classifier predict the permutation's index in the fixed set.
"""

from math import factorial
from typing import Dict

import torch

from ..config.registry import register_method
from ..data.jigsaw import JigsawDataset
from .pretext_base import (
    PRETEXT_BACKBONE_KIND,
    PretextModel,
    TileHead,
    check_pretext_config,
    check_tile_config,
    classification_outputs,
)


class Jigsaw(PretextModel):
    """Args:
    num_permutations: size of the permutation set (the classes).
    tile_dim, hidden_dim: see :class:`~insloc.modeling.pretext_base.TileHead`.
    backbone, pixel_mean, pixel_std, channels_last: see :class:`PretextModel`.
    """

    def __init__(
        self, *, num_permutations: int = 100, tile_dim: int = 512, hidden_dim: int = 4096, **kwargs
    ):
        super().__init__(**kwargs)
        self.head = TileHead(self.backbone.out_channels, 9, tile_dim, hidden_dim, num_permutations)

    @classmethod
    def from_config(cls, cfg) -> "Jigsaw":
        j = cfg.MODEL.JIGSAW
        return cls(
            num_permutations=j.NUM_PERMUTATIONS,
            tile_dim=j.TILE_DIM,
            hidden_dim=j.HIDDEN_DIM,
            **cls.base_kwargs(cfg),
        )

    def forward(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """
        Args:
            batch: "images": uint8 N x 9 x 3 x t x t (tiles in permuted order); "labels": N x 1
                permutation indices.
        Returns:
            "loss_cls": cross-entropy over the permutations; "accuracy": detached top-1.
        """
        n, t = batch["images"].shape[:2]
        x = self.embed(batch["images"].flatten(0, 1)).view(n, t, -1)  # x: N x 9 x C
        logits = self.head(x)  # N x P
        return classification_outputs(logits, batch["labels"].view(n))


def validate(cfg, fail) -> None:
    """Jigsaw's keys: tiles that fit their cells, a permutation set that exists."""
    check_pretext_config(cfg, fail)
    check_tile_config(cfg, fail, "JIGSAW")
    if cfg.MODEL.JIGSAW.NUM_PERMUTATIONS > factorial(9):
        fail("MODEL.JIGSAW.NUM_PERMUTATIONS", "at most 9! = 362880")
    if cfg.MODEL.JIGSAW.MIN_HAMMING > 9:
        fail("MODEL.JIGSAW.MIN_HAMMING", "at most 9 (nine tiles)")


register_method(
    "Jigsaw",
    task="pretext",
    model=Jigsaw,
    dataset=JigsawDataset,
    validate=validate,
    arch_keys=(
        "MODEL.JIGSAW.NUM_PERMUTATIONS",
        "MODEL.JIGSAW.PERMUTATION_SEED",
        "MODEL.JIGSAW.TILE_DIM",
        "MODEL.JIGSAW.HIDDEN_DIM",
    ),
    backbone_kind=PRETEXT_BACKBONE_KIND,
)
