"""Region proposal network with detectron2's head, losses and proposal selection.

Differences from torchvision's ``RegionProposalNetwork`` that this module removes: one 3x3 conv in
the head (torchvision's v2 detectors have two), L1 box loss and both losses normalised by
``batch_size_per_image * num_images`` (torchvision: smooth-L1 with beta 1/9, divided by the sampled
count), and proposals ranked by logits with NMS per level (the same top-k rules otherwise).
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, BoxCoder, Matcher
from torchvision.ops import batched_nms, clip_boxes_to_image

from .anchors import AnchorGenerator
from .sampling import box_regression_loss, match, subsample


class RPNHead(nn.Module):
    """3x3 conv + ReLU shared by the levels, then 1x1 convs to A objectness logits and 4A deltas.

    Names as detectron2's ``StandardRPNHead`` (``conv``, ``objectness_logits``, ``anchor_deltas``);
    the deltas of anchor a are channels 4a..4a+3.
    """

    def __init__(self, in_channels: int, num_anchors: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, padding=1)
        self.objectness_logits = nn.Conv2d(in_channels, num_anchors, kernel_size=1)
        self.anchor_deltas = nn.Conv2d(in_channels, num_anchors * 4, kernel_size=1)
        for layer in (self.conv, self.objectness_logits, self.anchor_deltas):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.constant_(layer.bias, 0.0)

    def forward(self, features: List[torch.Tensor]):
        """Args: features: per level N x C x H x W.
        Returns: per level N x A x H x W logits, per level N x 4A x H x W deltas."""
        logits, deltas = [], []
        for x in features:
            t = F.relu(self.conv(x))  # t: N x C x H x W
            logits.append(self.objectness_logits(t))  # N x A x H x W
            deltas.append(self.anchor_deltas(t))  # N x 4A x H x W
        return logits, deltas


class RPN(nn.Module):
    """Anchors, head, anchor labelling and losses, proposals (detectron2's ``RPN``).

    Args:
        in_features: feature maps it runs on ("res4"; "p2".."p6").
        head: :class:`RPNHead`.
        anchor_generator: :class:`AnchorGenerator` with one stride per ``in_features`` entry.
        iou_thresholds: (low, high): anchors below low are background, at or above high
            foreground (plus each box's best anchors), in between ignored.
        batch_size_per_image, positive_fraction: anchors sampled per image for the losses.
        pre_nms_topk: (train, test) proposals kept per level before NMS.
        post_nms_topk: (train, test) proposals kept per image after NMS.
        nms_thresh: IoU threshold of the NMS, applied to each level separately.
        bbox_reg_weights: (wx, wy, ww, wh) of the box encoding.
        smooth_l1_beta: beta of the box loss; 0 is L1 (detectron2's protocol, torchvision 1/9).
    """

    def __init__(
        self,
        *,
        in_features: Sequence[str],
        head: RPNHead,
        anchor_generator: AnchorGenerator,
        iou_thresholds: Tuple[float, float] = (0.3, 0.7),
        batch_size_per_image: int = 256,
        positive_fraction: float = 0.5,
        pre_nms_topk: Tuple[int, int] = (12000, 6000),
        post_nms_topk: Tuple[int, int] = (2000, 1000),
        nms_thresh: float = 0.7,
        bbox_reg_weights: Tuple[float, ...] = (1.0, 1.0, 1.0, 1.0),
        smooth_l1_beta: float = 0.0,
    ):
        super().__init__()
        self.in_features = list(in_features)
        self.head = head
        self.anchor_generator = anchor_generator
        low, high = iou_thresholds
        self.matcher = Matcher(high, low, allow_low_quality_matches=True)
        self.sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.batch_size_per_image = batch_size_per_image
        self.pre_nms_topk = {True: pre_nms_topk[0], False: pre_nms_topk[1]}
        self.post_nms_topk = {True: post_nms_topk[0], False: post_nms_topk[1]}
        self.nms_thresh = nms_thresh
        self.box_coder = BoxCoder(tuple(bbox_reg_weights), bbox_xform_clip=math.log(1000.0 / 16))
        self.smooth_l1_beta = smooth_l1_beta

    @classmethod
    def from_config(cls, cfg, backbone) -> "RPN":
        """Args: backbone: provides ``strides`` ({name: stride}) and ``out_channels``."""
        r, a = cfg.MODEL.RPN, cfg.MODEL.ANCHOR_GENERATOR
        anchors = AnchorGenerator(
            a.SIZES, a.ASPECT_RATIOS, [backbone.strides[f] for f in r.IN_FEATURES], a.OFFSET
        )
        if len(set(anchors.num_anchors)) != 1:
            raise ValueError(
                "the RPN head is shared by the levels: every level needs as many anchors "
                f"(MODEL.ANCHOR_GENERATOR.SIZES x ASPECT_RATIOS give {anchors.num_anchors})"
            )
        return cls(
            in_features=r.IN_FEATURES,
            head=RPNHead(backbone.out_channels, anchors.num_anchors[0]),
            anchor_generator=anchors,
            iou_thresholds=tuple(r.IOU_THRESHOLDS),
            batch_size_per_image=r.BATCH_SIZE_PER_IMAGE,
            positive_fraction=r.POSITIVE_FRACTION,
            pre_nms_topk=(r.PRE_NMS_TOPK_TRAIN, r.PRE_NMS_TOPK_TEST),
            post_nms_topk=(r.POST_NMS_TOPK_TRAIN, r.POST_NMS_TOPK_TEST),
            nms_thresh=r.NMS_THRESH,
            bbox_reg_weights=tuple(r.BBOX_REG_WEIGHTS),
            smooth_l1_beta=r.SMOOTH_L1_BETA,
        )

    def forward(
        self,
        features: Dict[str, torch.Tensor],
        image_sizes: List[Tuple[int, int]],
        gt_boxes: Optional[List[torch.Tensor]] = None,
    ) -> Tuple[List[torch.Tensor], Dict[str, torch.Tensor]]:
        """
        Args:
            features: {name: N x C x H_l x W_l}.
            image_sizes: (h, w) of each image before padding.
            gt_boxes: training only, per image G_i x 4 XYXY.
        Returns:
            proposals: per image P_i x 4 XYXY (no gradient), best first;
            losses: "loss_rpn_cls", "loss_rpn_loc" in training, else empty.
        """
        maps = [features[f] for f in self.in_features]
        anchors = self.anchor_generator(maps)  # L x [HWA_l x 4]
        logits, deltas = self.head(maps)
        n = len(image_sizes)
        # Flatten in (row, column, anchor) order, the order of the anchors.
        logits = [x.permute(0, 2, 3, 1).flatten(1) for x in logits]  # L x [N x HWA_l]
        deltas = [
            x.view(n, -1, 4, *x.shape[-2:]).permute(0, 3, 4, 1, 2).flatten(1, -2) for x in deltas
        ]  # L x [N x HWA_l x 4]
        losses = {}
        if self.training:
            if gt_boxes is None:
                raise ValueError("the RPN needs ground-truth boxes in training")
            losses = self.losses(torch.cat(anchors), logits, deltas, gt_boxes)
        proposals = self.predict_proposals(anchors, logits, deltas, image_sizes)
        return proposals, losses

    @torch.no_grad()
    def label_anchors(
        self, anchors: torch.Tensor, gt_boxes: List[torch.Tensor]
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Sampled labels (1 / 0 / -1 not sampled) and matched boxes of every anchor.

        Args: anchors: R x 4; gt_boxes: per image G_i x 4.
        Returns: labels N x R, matched ground-truth boxes N x R x 4.
        """
        labels, matched = [], []
        for gt in gt_boxes:
            idxs, label = match(self.matcher, gt, anchors)  # R, R
            pos, neg = subsample(self.sampler, label)
            label = torch.full_like(label, -1)  # R
            label[pos] = 1
            label[neg] = 0
            labels.append(label)
            matched.append(gt[idxs] if len(gt) else torch.zeros_like(anchors))  # R x 4
        return torch.stack(labels), torch.stack(matched)

    def losses(self, anchors, logits, deltas, gt_boxes) -> Dict[str, torch.Tensor]:
        """detectron2's RPN losses, both divided by ``batch_size_per_image * num_images``.

        Args: anchors: R x 4; logits: L x [N x HWA_l]; deltas: L x [N x HWA_l x 4];
            gt_boxes: per image G_i x 4.
        """
        labels, matched = self.label_anchors(anchors, gt_boxes)  # N x R, N x R x 4
        logits = torch.cat(logits, dim=1)  # N x R
        deltas = torch.cat(deltas, dim=1)  # N x R x 4
        pos = labels == 1  # N x R
        with torch.no_grad():
            anchors_pos = anchors[None].expand_as(matched)[pos]  # P x 4
            targets = self.box_coder.encode_single(matched[pos], anchors_pos)  # P x 4
        loss_loc = box_regression_loss(deltas[pos], targets, self.smooth_l1_beta)
        valid = labels >= 0  # N x R
        loss_cls = F.binary_cross_entropy_with_logits(
            logits[valid], labels[valid].to(logits.dtype), reduction="sum"
        )
        normalizer = self.batch_size_per_image * len(gt_boxes)
        return {"loss_rpn_cls": loss_cls / normalizer, "loss_rpn_loc": loss_loc / normalizer}

    @torch.no_grad()
    def predict_proposals(self, anchors, logits, deltas, image_sizes) -> List[torch.Tensor]:
        """Decode, keep the top-k of each level, clip, drop empty boxes, NMS per level, top-k.

        Args: anchors: L x [HWA_l x 4]; logits: L x [N x HWA_l]; deltas: L x [N x HWA_l x 4].
        Returns: per image P_i x 4.
        """
        n = len(image_sizes)
        pre_nms_topk = self.pre_nms_topk[self.training]
        boxes, scores, levels = [], [], []
        batch = torch.arange(n, device=logits[0].device)[:, None]  # N x 1
        for level, (anchors_l, logits_l, deltas_l) in enumerate(zip(anchors, logits, deltas)):
            k = min(pre_nms_topk, logits_l.shape[1])
            scores_l, idx = logits_l.topk(k, dim=1)  # N x k
            anchors_l = anchors_l[idx]  # N x k x 4
            decoded = self.box_coder.decode_single(
                deltas_l[batch, idx].reshape(-1, 4).float(), anchors_l.reshape(-1, 4)
            )  # Nk x 4
            boxes.append(decoded.view(n, k, 4))
            scores.append(scores_l)
            levels.append(torch.full((k,), level, dtype=torch.int64, device=idx.device))
        boxes = torch.cat(boxes, dim=1)  # N x K x 4
        scores = torch.cat(scores, dim=1)  # N x K
        levels = torch.cat(levels)  # K
        finite = torch.isfinite(boxes).all(dim=2) & torch.isfinite(scores)  # N x K
        if self.training and not bool(finite.all()):
            raise FloatingPointError(
                "RPN: predicted boxes or scores are not finite; training diverged"
            )
        proposals = []
        for i, (h, w) in enumerate(image_sizes):
            b, s, lvl = boxes[i], scores[i], levels
            if not self.training:
                b, s, lvl = b[finite[i]], s[finite[i]], lvl[finite[i]]
            b = clip_boxes_to_image(b, (h, w))  # K x 4
            keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])  # K, non-empty boxes
            b, s, lvl = b[keep], s[keep], lvl[keep]
            keep = batched_nms(b.float(), s, lvl, self.nms_thresh)[
                : self.post_nms_topk[self.training]
            ]
            proposals.append(b[keep])  # P_i x 4
        return proposals
