"""Relative patch location (Doersch, Gupta & Efros, ICCV 2015): where is the second patch with
respect to the first, among the 8 neighbours of a 3x3 grid.

Both patches (``insloc.data.relative_loc``: centre first) go through one shared trunk; each
patch's pooled features pass a shared fc, the pair is concatenated, and a hidden fc and the
classifier predict the neighbour's position 0..7.
"""

from typing import Dict

import torch

from ..config.registry import register_method
from ..data.relative_loc import RelativeLocDataset
from .pretext_base import (
    PRETEXT_BACKBONE_KIND,
    PretextModel,
    TileHead,
    check_pretext_config,
    check_tile_config,
    classification_outputs,
)


class RelativeLoc(PretextModel):
    """Args:
    tile_dim, hidden_dim: see :class:`~insloc.modeling.pretext_base.TileHead`.
    backbone, pixel_mean, pixel_std, channels_last: see :class:`PretextModel`.
    """

    def __init__(self, *, tile_dim: int = 512, hidden_dim: int = 4096, **kwargs):
        super().__init__(**kwargs)
        self.head = TileHead(self.backbone.out_channels, 2, tile_dim, hidden_dim, 8)

    @classmethod
    def from_config(cls, cfg) -> "RelativeLoc":
        r = cfg.MODEL.RELATIVE_LOC
        return cls(tile_dim=r.TILE_DIM, hidden_dim=r.HIDDEN_DIM, **cls.base_kwargs(cfg))

    def forward(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """
        Args:
            batch: "images": uint8 N x 2 x 3 x t x t (centre, neighbour); "labels": N x 1.
        Returns:
            "loss_cls": cross-entropy over the 8 positions; "accuracy": detached top-1.
        """
        n = batch["images"].shape[0]
        x = self.embed(batch["images"].flatten(0, 1)).view(n, 2, -1)  # x: N x 2 x C
        logits = self.head(x)  # N x 8
        return classification_outputs(logits, batch["labels"].view(n))


def validate(cfg, fail) -> None:
    """RelativeLoc's keys: tiles that fit their cells."""
    check_pretext_config(cfg, fail)
    check_tile_config(cfg, fail, "RELATIVE_LOC")


register_method(
    "RelativeLoc",
    task="pretext",
    model=RelativeLoc,
    dataset=RelativeLocDataset,
    validate=validate,
    arch_keys=("MODEL.RELATIVE_LOC.TILE_DIM", "MODEL.RELATIVE_LOC.HIDDEN_DIM"),
    backbone_kind=PRETEXT_BACKBONE_KIND,
)
