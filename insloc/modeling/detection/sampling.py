"""Matching boxes to ground truth, balanced sampling, and the box regression loss shared by the
RPN and the RoI heads: torchvision's ``Matcher`` and ``BalancedPositiveNegativeSampler`` with
detectron2's conventions (an image without boxes has only negatives; labels 1 / 0 / -1)."""

from typing import Tuple

import torch
import torch.nn.functional as F
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, Matcher
from torchvision.ops import box_iou


def match(
    matcher: Matcher, gt_boxes: torch.Tensor, boxes: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Match each box to its best ground truth.

    Args:
        matcher: torchvision ``Matcher`` (thresholds, low-quality matches).
        gt_boxes: G x 4 XYXY (G may be 0).
        boxes: R x 4 XYXY.
    Returns:
        matched_idxs: R, index of the best ground truth (0 when G = 0; only meaningful for
            label 1), labels: R int64, 1 foreground, 0 background, -1 ignored.
    """
    if len(gt_boxes) == 0:
        zeros = torch.zeros(len(boxes), dtype=torch.int64, device=boxes.device)  # R
        return zeros, zeros.clone()
    matches = matcher(box_iou(gt_boxes, boxes))  # R, -1 below low, -2 between thresholds
    labels = (matches >= 0).to(torch.int64)  # R
    labels[matches == Matcher.BETWEEN_THRESHOLDS] = -1
    return matches.clamp(min=0), labels


def subsample(
    sampler: BalancedPositiveNegativeSampler, labels: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """At most ``batch_size_per_image`` boxes, ``positive_fraction`` of them foreground if there
    are enough, drawn at random (detectron2's ``subsample_labels``).

    Args: labels: R in {1, 0, -1}. Returns: foreground indices, background indices.
    """
    pos, neg = sampler([labels])  # 1 x [R] uint8 masks
    return pos[0].nonzero()[:, 0], neg[0].nonzero()[:, 0]


def box_regression_loss(pred: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """Summed smooth-L1 loss; ``beta`` 0 is the L1 loss (detectron2's protocol value)."""
    if beta < 1e-5:
        return (pred - target).abs().sum()
    return F.smooth_l1_loss(pred, target, beta=beta, reduction="sum")
