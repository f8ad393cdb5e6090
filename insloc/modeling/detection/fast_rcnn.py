"""Box classification and class-specific regression on RoI features (detectron2's
``FastRCNNOutputLayers``): background is the LAST class, as in detectron2, so its predictor weights
load by renaming only (torchvision puts background first)."""

import math
from typing import Dict, List, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.ops import batched_nms, clip_boxes_to_image

from .sampling import box_regression_loss


class FastRCNNPredictor(nn.Module):
    """``cls_score``: D -> K + 1 logits (K = background); ``bbox_pred``: D -> 4K deltas.

    Args:
        in_features: D.
        num_classes: K foreground classes.
        bbox_reg_weights: (wx, wy, ww, wh) of the box encoding (10, 10, 5, 5).
        smooth_l1_beta: beta of the box loss; 0 is L1 (detectron2's protocol, torchvision 1/9).
        score_thresh: test: detections scoring at or below it are dropped.
        nms_thresh: test: IoU threshold of the per-class NMS.
        detections_per_image: test: at most this many detections per image.
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        *,
        bbox_reg_weights: Sequence[float] = (10.0, 10.0, 5.0, 5.0),
        smooth_l1_beta: float = 0.0,
        score_thresh: float = 0.05,
        nms_thresh: float = 0.5,
        detections_per_image: int = 100,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.cls_score = nn.Linear(in_features, num_classes + 1)
        self.bbox_pred = nn.Linear(in_features, num_classes * 4)
        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        for layer in (self.cls_score, self.bbox_pred):
            nn.init.constant_(layer.bias, 0.0)
        self.box_coder = BoxCoder(tuple(bbox_reg_weights), bbox_xform_clip=math.log(1000.0 / 16))
        self.smooth_l1_beta = smooth_l1_beta
        self.score_thresh = score_thresh
        self.nms_thresh = nms_thresh
        self.detections_per_image = detections_per_image

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Args: x: M x D (or M x D x 1 x 1). Returns: logits M x (K + 1), deltas M x 4K."""
        x = x.flatten(1)  # M x D
        return self.cls_score(x), self.bbox_pred(x)

    def losses(
        self,
        predictions: Tuple[torch.Tensor, torch.Tensor],
        proposals: torch.Tensor,
        gt_classes: torch.Tensor,
        gt_boxes: torch.Tensor,
    ) -> Dict[str, torch.Tensor]:
        """Cross-entropy over K + 1 classes (mean) and the box loss of the foreground RoIs on their
        class's deltas, summed and divided by the number of RoIs.

        Args:
            predictions: ``forward``'s output for the M sampled RoIs of the batch.
            proposals: M x 4; gt_classes: M in 0..K (K background); gt_boxes: M x 4 matched boxes.
        """
        logits, deltas = predictions
        if len(gt_classes) == 0:  # no RoI at all: zero losses that still reach every weight
            zero = logits.sum() * 0.0 + deltas.sum() * 0.0
            return {"loss_cls": zero, "loss_box_reg": zero}
        loss_cls = F.cross_entropy(logits.float(), gt_classes, reduction="mean")
        fg = ((gt_classes >= 0) & (gt_classes < self.num_classes)).nonzero()[:, 0]  # F
        fg_deltas = deltas.view(len(deltas), self.num_classes, 4)[fg, gt_classes[fg]]  # F x 4
        with torch.no_grad():
            targets = self.box_coder.encode_single(gt_boxes[fg], proposals[fg])  # F x 4
        loss_box = box_regression_loss(fg_deltas.float(), targets, self.smooth_l1_beta)
        return {"loss_cls": loss_cls, "loss_box_reg": loss_box / len(gt_classes)}

    @torch.no_grad()
    def inference(
        self,
        predictions: Tuple[torch.Tensor, torch.Tensor],
        proposals: List[torch.Tensor],
        image_sizes: List[Tuple[int, int]],
    ) -> List[Dict[str, torch.Tensor]]:
        """Per-class boxes, scores above ``score_thresh``, per-class NMS, top detections.

        Args:
            predictions: ``forward``'s output for the proposals of all images.
            proposals: per image P_i x 4.
            image_sizes: (h, w) each image's boxes are clipped to.
        Returns:
            per image {"boxes": D x 4, "scores": D, "classes": D int64}, best first.
        """
        logits, deltas = predictions
        counts = [len(p) for p in proposals]
        boxes = self.box_coder.decode_single(deltas.float(), torch.cat(proposals))  # M x 4K
        scores = F.softmax(logits.float(), dim=-1)  # M x (K + 1)
        results = []
        for b, s, (h, w) in zip(boxes.split(counts), scores.split(counts), image_sizes):
            finite = torch.isfinite(b).all(dim=1) & torch.isfinite(s).all(dim=1)  # P
            b, s = b[finite], s[finite, :-1]  # P x 4K, P x K
            b = clip_boxes_to_image(b.reshape(-1, 4), (h, w)).view(len(b), -1, 4)  # P x K x 4
            keep = s > self.score_thresh  # P x K
            classes = keep.nonzero()[:, 1]  # D
            b, s = b[keep], s[keep]  # D x 4, D
            order = batched_nms(b, s, classes, self.nms_thresh)[: self.detections_per_image]
            results.append({"boxes": b[order], "scores": s[order], "classes": classes[order]})
        return results
