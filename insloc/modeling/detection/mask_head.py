"""The mask branch: torchvision's ``MaskRCNNHeads`` (3x3 convs with norm) and ``MaskRCNNPredictor``
(2x2 deconv, ReLU, 1x1 conv to one logit map per class) with detectron2's initialisation, loss and
inference (``mask_rcnn_loss``, ``mask_rcnn_inference``)."""

from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

from ..norm import norm_layer
from .mask_ops import mask_targets


def build_mask_head(
    in_channels: int, num_conv: int, conv_dim: int, norm: str
) -> Optional[MaskRCNNHeads]:
    """``num_conv`` x (3x3 conv, norm, ReLU): children ``0``..``num_conv - 1`` (detectron2's
    ``mask_fcn1``..); None for ``num_conv`` 0 (the C4 head runs on res5's output directly)."""
    if num_conv == 0:
        return None
    return MaskRCNNHeads(in_channels, [conv_dim] * num_conv, 1, norm_layer=norm_layer(norm))


def build_mask_predictor(in_channels: int, conv_dim: int, num_classes: int) -> MaskRCNNPredictor:
    """``conv5_mask`` (2x2 deconv, stride 2, detectron2's ``deconv``) + ReLU + ``mask_fcn_logits``
    (detectron2's ``predictor``). Input M x in_channels x S x S, output M x K x 2S x 2S."""
    predictor = MaskRCNNPredictor(in_channels, conv_dim, num_classes)
    deconv, logits = predictor.conv5_mask, predictor.mask_fcn_logits
    nn.init.kaiming_normal_(deconv.weight, mode="fan_out", nonlinearity="relu")
    nn.init.normal_(logits.weight, std=0.001)
    nn.init.constant_(deconv.bias, 0.0)
    nn.init.constant_(logits.bias, 0.0)
    return predictor


def mask_loss(
    logits: torch.Tensor,
    classes: torch.Tensor,
    boxes: torch.Tensor,
    polygons: List[Sequence[np.ndarray]],
) -> torch.Tensor:
    """Mean binary cross-entropy of each foreground RoI's logits for its ground-truth class against
    its polygons rasterised inside the RoI box.

    Args:
        logits: F x K x M x M.
        classes: F ground-truth classes; boxes: F x 4 RoI boxes; polygons: F polygon lists.
    """
    if len(logits) == 0:  # no foreground RoI in the batch
        return logits.sum() * 0.0
    targets = mask_targets(polygons, boxes, logits.shape[-1])  # F x M x M
    logits = logits[torch.arange(len(logits), device=logits.device), classes]  # F x M x M
    return F.binary_cross_entropy_with_logits(logits.float(), targets, reduction="mean")


def mask_probabilities(logits: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Args: logits: D x K x M x M; classes: D predicted classes. Returns: D x M x M sigmoid of the
    predicted class's map."""
    return logits[torch.arange(len(logits), device=logits.device), classes].float().sigmoid()
