"""InsLoc (Yang et al., CVPR 2021): instance localization by contrasting RoI embeddings.

Each view is a foreground crop pasted on a background; the encoder pools the pasted (or
anchor-augmented) box on every feature level, runs a head shared by the levels and projects each
RoI feature. The contrastive machinery is MoCo's, with one queue per level (``moco.py``).
"""

from typing import Dict, Optional

import torch
from torch import nn

from ..config.checks import get_key
from ..config.registry import register_method
from ..data.datasets import InsLocPretrainDataset
from .backbone import build_backbone, build_res5
from .heads import Res5RoIHead, build_fpn_box_head, linear_projection, projection
from .moco import MoCo, moco_kwargs
from .poolers import RoIPooler


class RoIEncoder(nn.Module):
    """Backbone -> RoIAlign of each level's box -> box head shared by the levels -> projection.

    Args:
        backbone: images -> {level: N x C x H_l x W_l}.
        pooler: ``RoIPooler`` over the levels to embed.
        box_head: M x C x R x R -> M x D (``FastRCNNConvFCHead`` for FPN, ``Res5RoIHead`` for C4).
        proj: M x D -> M x dim.
    """

    def __init__(
        self, backbone: nn.Module, pooler: RoIPooler, box_head: nn.Module, proj: nn.Module
    ):
        super().__init__()
        self.backbone = backbone
        self.pooler = pooler
        self.box_head = box_head
        self.proj = proj

    def forward(
        self, images: torch.Tensor, boxes: Optional[torch.Tensor]
    ) -> Dict[str, torch.Tensor]:
        """
        Args:
            images: N x 3 x H x W, normalised.
            boxes: N x L x 4, XYXY image pixels; ``boxes[:, l]`` is pooled on level l.
        Returns:
            {level: N x dim}, not normalised.
        """
        if boxes is None:
            raise ValueError(
                "InsLoc pools boxes: the batch needs 'q_boxes' and 'k_boxes' (N x L x 4)"
            )
        pooled = self.pooler(self.backbone(images), boxes)  # L x [N x C x R x R]
        # One head call for all levels. Sample-major order keeps a sample's RoIs together, so a
        # split batch norm's contiguous groups hold whole samples, as one GPU does under DDP.
        x = torch.stack(pooled, dim=1).flatten(0, 1)  # x: NL x C x R x R
        x = self.proj(self.box_head(x))  # x: NL x dim
        x = x.view(len(boxes), len(pooled), -1)  # x: N x L x dim
        return {name: x[:, i] for i, name in enumerate(self.pooler.in_features)}  # level: N x dim


class InsLoc(MoCo):
    """MoCo on RoI embeddings, one queue per pooled level (see ``MoCo`` for the arguments).

    ``encoder`` is a :class:`RoIEncoder`; the batch's "q_boxes" and "k_boxes" (N x L x 4, one box
    per ``MODEL.ROI_BOX_HEAD.IN_FEATURES`` level) are pooled on the query and key views.
    """

    uses_boxes = True

    @classmethod
    def from_config(cls, cfg) -> "InsLoc":
        """R50-FPN (box head of 4 convs + fcs, linear projection) or R50-C4 (res5 head, projection
        with ``MODEL.MOCO.MLP_DIM`` hidden units, 0 = linear)."""
        head = cfg.MODEL.ROI_BOX_HEAD
        backbone = build_backbone(cfg)
        pooler = RoIPooler(
            head.IN_FEATURES, backbone.strides, head.POOLER_RESOLUTION, head.POOLER_SAMPLING_RATIO
        )
        if cfg.MODEL.BACKBONE.NAME == "resnet_c4":
            r = cfg.MODEL.RESNETS
            res5 = build_res5(r.DEPTH, r.WIDTH, r.NORM)
            box_head = Res5RoIHead(res5, backbone.out_channels * 2)
            proj = projection(box_head.out_channels, cfg.MODEL.MOCO.MLP_DIM, cfg.MODEL.MOCO.DIM)
        else:
            box_head = build_fpn_box_head(
                backbone.out_channels,
                head.POOLER_RESOLUTION,
                head.NUM_CONV,
                head.CONV_DIM,
                head.NUM_FC,
                head.FC_DIM,
                head.NORM,
            )
            proj = linear_projection(head.FC_DIM, cfg.MODEL.MOCO.DIM)
        return cls(
            encoder=RoIEncoder(backbone, pooler, box_head, proj),
            feature_names=head.IN_FEATURES,
            loss_weights=head.LOSS_WEIGHTS,
            **moco_kwargs(cfg),
        )


# The maps each InsLoc backbone gives the RoI pooler.
POOLED_MAPS = {"resnet_fpn": ("p2", "p3", "p4", "p5"), "resnet_c4": ("res4",)}


def validate(cfg, fail) -> None:
    """InsLoc's keys: the pooled levels are maps of the backbone, one loss weight per level, and the
    levels that pool the augmented box are among them."""
    head = cfg.MODEL.ROI_BOX_HEAD
    names = POOLED_MAPS[cfg.MODEL.BACKBONE.NAME]
    features = list(head.IN_FEATURES)
    if not features or any(f not in names for f in features) or len(set(features)) != len(features):
        fail(
            "MODEL.ROI_BOX_HEAD.IN_FEATURES",
            f"distinct names among {names} for backbone {cfg.MODEL.BACKBONE.NAME!r}",
        )
    if head.LOSS_WEIGHTS and len(head.LOSS_WEIGHTS) != len(features):
        fail("MODEL.ROI_BOX_HEAD.LOSS_WEIGHTS", f"{len(features)} weights, one per IN_FEATURES")
    for key in ("INPUT.BOX_AUG.QUERY_FEATURES", "INPUT.BOX_AUG.KEY_FEATURES"):
        if any(f not in features for f in get_key(cfg, key)):
            fail(key, f"names among MODEL.ROI_BOX_HEAD.IN_FEATURES {features}")


register_method(
    "InsLoc",
    task="pretraining",
    model=InsLoc,
    dataset=InsLocPretrainDataset,
    validate=validate,
    arch_keys=("MODEL.ROI_BOX_HEAD.IN_FEATURES", "MODEL.MOCO.DIM", "MODEL.MOCO.QUEUE_SIZE"),
    backbones=tuple(POOLED_MAPS),
)
