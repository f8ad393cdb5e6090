"""RoI heads: proposal sampling, then the box branch and the optional mask branch.

``Res5ROIHeads`` (C4): RoIAlign 14x14 on res4, res5 as the box head, its 7x7 output also feeding
the mask predictor. ``StandardROIHeads`` (FPN): RoIAlign by level, the 4conv1fc box head, and a
separate 14x14 pooler and 4-conv head for masks. Both follow detectron2's classes of the same names.
"""

from typing import Dict, List, Optional, Tuple

import torch
from torch import nn
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, Matcher

from ..backbone import build_res5
from ..heads import build_fpn_box_head
from ..norm import get_norm
from .fast_rcnn import FastRCNNPredictor
from .mask_head import build_mask_head, build_mask_predictor, mask_loss, mask_probabilities
from .poolers import LevelRoIPooler
from .sampling import match, subsample

Targets = List[Dict[str, object]]


class ROIHeads(nn.Module):
    """Sampling and the box / mask logic shared by the two RoI heads.

    Subclasses provide ``box_features(features, boxes) -> (M x D, shared)`` and
    ``mask_logits(features, boxes, shared) -> M x K x 28 x 28``; ``shared`` is what the box branch
    computed that the mask branch may reuse (res5's maps in C4), or None.

    Args:
        box_predictor: :class:`FastRCNNPredictor`.
        mask_predictor: ``build_mask_predictor`` output; None for Faster R-CNN.
        num_classes: K foreground classes.
        batch_size_per_image, positive_fraction: RoIs sampled per image (512, 0.25).
        iou_threshold: proposals with IoU >= it with a ground-truth box are foreground.
        proposal_append_gt: add the ground-truth boxes to the proposals in training.
    """

    def __init__(
        self,
        *,
        box_predictor: FastRCNNPredictor,
        mask_predictor: Optional[nn.Module] = None,
        num_classes: int,
        batch_size_per_image: int = 512,
        positive_fraction: float = 0.25,
        iou_threshold: float = 0.5,
        proposal_append_gt: bool = True,
    ):
        super().__init__()
        self.box_predictor = box_predictor
        self.mask_predictor = mask_predictor
        self.num_classes = num_classes
        self.matcher = Matcher(iou_threshold, iou_threshold, allow_low_quality_matches=False)
        self.sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.proposal_append_gt = proposal_append_gt

    @property
    def mask_on(self) -> bool:
        return self.mask_predictor is not None

    @torch.no_grad()
    def label_and_sample_proposals(
        self, proposals: List[torch.Tensor], targets: Targets
    ) -> List[Dict[str, torch.Tensor]]:
        """Per image: the sampled RoIs (foreground first), their classes (K: background) and
        matched boxes, and the index of the matched instance ("gt_index", for its polygons)."""
        samples = []
        for boxes, target in zip(proposals, targets):
            gt_boxes, gt_classes = target["boxes"], target["classes"]  # G x 4, G
            if self.proposal_append_gt:
                boxes = torch.cat([boxes, gt_boxes.to(boxes.dtype)])  # P x 4
            idxs, labels = match(self.matcher, gt_boxes, boxes)  # P, P
            fg, bg = subsample(self.sampler, labels)
            keep = torch.cat([fg, bg])  # S
            classes = torch.full_like(keep, self.num_classes)  # S, background
            if len(gt_boxes):
                classes[: len(fg)] = gt_classes[idxs[fg]]
                matched = gt_boxes[idxs[keep]]  # S x 4
            else:
                matched = torch.zeros_like(boxes[keep])  # S x 4
            samples.append(
                {
                    "boxes": boxes[keep],
                    "gt_classes": classes,
                    "gt_boxes": matched,
                    "gt_index": idxs[keep],
                }
            )
        return samples

    def forward(
        self,
        features: Dict[str, torch.Tensor],
        proposals: List[torch.Tensor],
        image_sizes: List[Tuple[int, int]],
        targets: Optional[Targets] = None,
    ):
        """
        Args:
            features: the backbone's maps.
            proposals: per image P_i x 4.
            image_sizes: (h, w) before padding.
            targets: training only, per image {"boxes": G x 4, "classes": G, "masks": G polygon
                lists (Mask R-CNN)}.
        Returns:
            (detections, losses): in training ([], {"loss_cls", "loss_box_reg"[, "loss_mask"]}); in
            evaluation (per image {"boxes", "scores", "classes"[, "mask_probs": D x 28 x 28]}, {}).
        """
        if not self.training:
            return self._inference(features, proposals, image_sizes), {}
        if targets is None:
            raise ValueError("the RoI heads need targets in training")
        samples = self.label_and_sample_proposals(proposals, targets)
        boxes = [s["boxes"] for s in samples]
        x, shared = self.box_features(features, boxes)  # M x D
        cat = {k: torch.cat([s[k] for s in samples]) for k in ("boxes", "gt_classes", "gt_boxes")}
        losses = self.box_predictor.losses(
            self.box_predictor(x), cat["boxes"], cat["gt_classes"], cat["gt_boxes"]
        )
        if self.mask_on:
            losses["loss_mask"] = self._mask_loss(features, samples, targets, shared)
        return [], losses

    def _mask_loss(self, features, samples, targets, shared) -> torch.Tensor:
        fg = [(s["gt_classes"] >= 0) & (s["gt_classes"] < self.num_classes) for s in samples]
        boxes = [s["boxes"][m] for s, m in zip(samples, fg)]  # per image F_i x 4
        polygons = []
        for s, m, target in zip(samples, fg, targets):
            if "masks" not in target:
                raise ValueError("Mask R-CNN needs 'masks' (polygons) in the training instances")
            polygons += [target["masks"][i] for i in s["gt_index"][m].tolist()]
        fg_shared = shared[torch.cat(fg)] if shared is not None else None
        logits = self.mask_logits(features, boxes, fg_shared)  # F x K x M x M
        classes = torch.cat([s["gt_classes"][m] for s, m in zip(samples, fg)])  # F
        return mask_loss(logits, classes, torch.cat(boxes), polygons)

    def _inference(self, features, proposals, image_sizes) -> List[Dict[str, torch.Tensor]]:
        x, _ = self.box_features(features, proposals)  # M x D
        detections = self.box_predictor.inference(self.box_predictor(x), proposals, image_sizes)
        if self.mask_on:
            boxes = [d["boxes"] for d in detections]
            logits = self.mask_logits(features, boxes, None)  # D x K x M x M
            classes = torch.cat([d["classes"] for d in detections])  # D
            probs = mask_probabilities(logits, classes).split([len(b) for b in boxes])
            for d, p in zip(detections, probs):
                d["mask_probs"] = p  # D_i x M x M
        return detections

    def box_features(self, features, boxes):
        raise NotImplementedError

    def mask_logits(self, features, boxes, shared):
        raise NotImplementedError


def _predictors(cfg, box_dim: int, mask_in_channels: int):
    h = cfg.MODEL.ROI_HEADS
    box = FastRCNNPredictor(
        box_dim,
        h.NUM_CLASSES,
        bbox_reg_weights=cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS,
        smooth_l1_beta=cfg.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA,
        score_thresh=h.SCORE_THRESH_TEST,
        nms_thresh=h.NMS_THRESH_TEST,
        detections_per_image=h.DETECTIONS_PER_IMAGE,
    )
    mask = None
    if cfg.MODEL.MASK_ON:
        mask = build_mask_predictor(
            mask_in_channels, cfg.MODEL.ROI_MASK_HEAD.CONV_DIM, h.NUM_CLASSES
        )
    return dict(
        box_predictor=box,
        mask_predictor=mask,
        num_classes=h.NUM_CLASSES,
        batch_size_per_image=h.BATCH_SIZE_PER_IMAGE,
        positive_fraction=h.POSITIVE_FRACTION,
        iou_threshold=h.IOU_THRESHOLDS[0],
    )


def _pooler(cfg, head, in_features, strides) -> LevelRoIPooler:
    return LevelRoIPooler(
        in_features,
        strides,
        head.POOLER_RESOLUTION,
        head.POOLER_SAMPLING_RATIO,
        aligned=head.POOLER_TYPE == "ROIAlignV2",
    )


class Res5ROIHeads(ROIHeads):
    """C4: pooler on res4 -> ``res5`` (M x C5 x 7 x 7) -> mean -> predictor; the mask predictor
    runs on the foreground RoIs' res5 maps in training and on the detections' in evaluation.

    Args:
        pooler: single-level :class:`LevelRoIPooler` (14x14 on res4).
        res5: ``build_res5`` output; MoCo's extra norm after it is a child named ``norm``.
        **kwargs: :class:`ROIHeads` arguments.
    """

    def __init__(self, *, pooler: LevelRoIPooler, res5: nn.Module, **kwargs):
        super().__init__(**kwargs)
        self.pooler = pooler
        self.res5 = res5

    @classmethod
    def from_config(cls, cfg, backbone) -> "Res5ROIHeads":
        r = cfg.MODEL.RESNETS
        res5 = build_res5(r.DEPTH, r.WIDTH, r.NORM)
        out_channels = backbone.out_channels * 2
        if cfg.MODEL.ROI_HEADS.RES5_EXTRA_NORM:
            res5.add_module("norm", get_norm(r.NORM, out_channels))
        pooler = _pooler(
            cfg, cfg.MODEL.ROI_BOX_HEAD, cfg.MODEL.ROI_HEADS.IN_FEATURES, backbone.strides
        )
        return cls(pooler=pooler, res5=res5, **_predictors(cfg, out_channels, out_channels))

    def box_features(self, features, boxes):
        x = self.res5(self.pooler(features, boxes))  # x: M x C5 x 7 x 7
        return x.mean(dim=(2, 3)), x  # M x C5

    def mask_logits(self, features, boxes, shared):
        if shared is None:
            shared = self.res5(self.pooler(features, boxes))  # M x C5 x 7 x 7
        return self.mask_predictor(shared)  # M x K x 14 x 14


class StandardROIHeads(ROIHeads):
    """FPN: box pooler by level -> box head -> predictor; mask pooler -> mask head -> predictor.

    Args:
        box_pooler: :class:`LevelRoIPooler` (7x7 on P2-P5).
        box_head: M x C x 7 x 7 -> M x D (``build_fpn_box_head``, with InsLoc's extra norm after
            the fc as a child named ``fc_extra_norm`` when configured).
        mask_pooler: :class:`LevelRoIPooler` (14x14); mask_head: ``build_mask_head`` output.
        **kwargs: :class:`ROIHeads` arguments.
    """

    def __init__(
        self,
        *,
        box_pooler: LevelRoIPooler,
        box_head: nn.Module,
        mask_pooler: Optional[LevelRoIPooler] = None,
        mask_head: Optional[nn.Module] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if kwargs.get("mask_predictor") is not None and mask_pooler is None:
            raise ValueError("a mask predictor needs a mask pooler")
        self.box_pooler = box_pooler
        self.box_head = box_head
        self.mask_pooler = mask_pooler
        self.mask_head = mask_head

    @classmethod
    def from_config(cls, cfg, backbone) -> "StandardROIHeads":
        b, m = cfg.MODEL.ROI_BOX_HEAD, cfg.MODEL.ROI_MASK_HEAD
        in_features = cfg.MODEL.ROI_HEADS.IN_FEATURES
        channels = backbone.out_channels
        box_head = build_fpn_box_head(
            channels, b.POOLER_RESOLUTION, b.NUM_CONV, b.CONV_DIM, b.NUM_FC, b.FC_DIM, b.NORM
        )
        for layer in box_head.modules():  # detectron2's fc init (c2_xavier_fill)
            if isinstance(layer, nn.Linear):
                nn.init.kaiming_uniform_(layer.weight, a=1)
                nn.init.constant_(layer.bias, 0.0)
        if b.EXTRA_NORM:
            add_fc_extra_norm(box_head, b.FC_DIM, b.NORM)
        mask_pooler = mask_head = None
        if cfg.MODEL.MASK_ON:
            mask_pooler = _pooler(cfg, m, in_features, backbone.strides)
            mask_head = build_mask_head(channels, m.NUM_CONV, m.CONV_DIM, m.NORM)
        mask_in = m.CONV_DIM if m.NUM_CONV else channels
        return cls(
            box_pooler=_pooler(cfg, b, in_features, backbone.strides),
            box_head=box_head,
            mask_pooler=mask_pooler,
            mask_head=mask_head,
            **_predictors(cfg, b.FC_DIM, mask_in),
        )

    def box_features(self, features, boxes):
        return self.box_head(self.box_pooler(features, boxes)), None  # M x D

    def mask_logits(self, features, boxes, shared):
        x = self.mask_pooler(features, boxes)  # M x C x 14 x 14
        if self.mask_head is not None:
            x = self.mask_head(x)  # M x conv_dim x 14 x 14
        return self.mask_predictor(x)  # M x K x 28 x 28


def add_fc_extra_norm(box_head: nn.Sequential, fc_dim: int, norm: str) -> None:
    """InsLoc's ``FastRCNNConvFCHeadExtraNorm``: a 2-d norm of the last fc's ReLU output (as an
    fc_dim x 1 x 1 map), appended as ``fc_extra_norm`` so its names match the official head."""
    layer = get_norm(norm, fc_dim)
    if layer is None:
        raise ValueError("MODEL.ROI_BOX_HEAD.EXTRA_NORM needs MODEL.ROI_BOX_HEAD.NORM set")
    box_head.add_module("to_map", nn.Unflatten(1, (fc_dim, 1, 1)))
    box_head.add_module("fc_extra_norm", layer)
    box_head.add_module("to_vector", nn.Flatten(1))
