"""Faster / Mask R-CNN (R50-C4 and R50-FPN) for fine-tuning, to detectron2's ``GeneralizedRCNN``.

Input: a list of samples (the data mapper's output: uint8 RGB images already resized, their
original height and width, and in training their instances). Training returns the losses; evaluation
returns one dict per image with boxes (and masks) in the ORIGINAL image's pixels.
"""

from typing import Dict, List, Sequence, Tuple

import torch
from torch import nn
from torchvision.ops import clip_boxes_to_image

from ...config.checks import get_key
from ...config.registry import register_method
from ..backbone import build_backbone, freeze_stages
from ..norm import defer_sync_bn
from .mask_ops import paste_masks_in_image
from .roi_heads import Res5ROIHeads, StandardROIHeads
from .rpn import RPN


class GeneralizedRCNN(nn.Module):
    """Backbone -> RPN -> RoI heads, with detectron2's pre- and post-processing.

    Module names: ``backbone`` (C4: the ``resnet_c4`` trunk, torchvision names ``conv1``, ``bn1``,
    ``layer1``-``layer3``; FPN: ``body.*`` and ``fpn.*`` as torchvision's detectors), ``rpn.head``
    (``conv``, ``objectness_logits``, ``anchor_deltas``), ``roi_heads`` (C4: ``res5``; FPN:
    ``box_head``, ``mask_head``; both ``box_predictor`` and ``mask_predictor``).

    Args:
        backbone: images -> {name: N x C x H_l x W_l}.
        rpn: :class:`RPN`.
        roi_heads: :class:`Res5ROIHeads` or :class:`StandardROIHeads`.
        pixel_mean, pixel_std: RGB normalisation of the 0-255 input.
        size_divisibility: pad the batch to a multiple of it (32 for FPN, 0: no rounding, C4).
        channels_last: feed CUDA backbones channels_last images.
    Every ``nn.SyncBatchNorm`` inside becomes a ``DeferredSyncBatchNorm`` (plain BN until
    ``convert_sync_bn_if_distributed``), so one process never fails on SyncBN.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        rpn: RPN,
        roi_heads: nn.Module,
        pixel_mean: Sequence[float] = (123.675, 116.28, 103.53),
        pixel_std: Sequence[float] = (58.395, 57.12, 57.375),
        size_divisibility: int = 0,
        channels_last: bool = False,
    ):
        super().__init__()
        self.backbone = backbone
        self.rpn = rpn
        self.roi_heads = roi_heads
        self.size_divisibility = size_divisibility
        self.channels_last = channels_last
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(3, 1, 1), persistent=False)
        defer_sync_bn(self)

    @classmethod
    def from_config(cls, cfg) -> "GeneralizedRCNN":
        """The registered backbone of ``MODEL.BACKBONE.NAME`` (R-C4: ``resnet_c4``; R-FPN:
        ``resnet_fpn`` with P6), frozen up to ``MODEL.BACKBONE.FREEZE_AT``, and the RoI heads of
        ``MODEL.ROI_HEADS.NAME`` (``Res5ROIHeads``, ``StandardROIHeads``)."""
        backbone = build_backbone(cfg)
        freeze_stages(getattr(backbone, "body", backbone), cfg.MODEL.BACKBONE.FREEZE_AT)
        roi_heads = ROI_HEADS[cfg.MODEL.ROI_HEADS.NAME].from_config(cfg, backbone)
        return cls(
            backbone=backbone,
            rpn=RPN.from_config(cfg, backbone),
            roi_heads=roi_heads,
            pixel_mean=tuple(cfg.MODEL.PIXEL_MEAN),
            pixel_std=tuple(cfg.MODEL.PIXEL_STD),
            size_divisibility=getattr(backbone, "size_divisibility", 0),
            channels_last=cfg.MODEL.CHANNELS_LAST,
        )

    def preprocess(self, samples: List[dict]) -> Tuple[torch.Tensor, List[Tuple[int, int]]]:
        """Normalise each uint8 image, then pad the batch with zeros at the bottom and right to
        the largest size, rounded up to ``size_divisibility`` (detectron2's ``ImageList``).

        Returns: N x 3 x H x W float, and each image's (h, w) before padding.
        """
        images = [s["image"].to(self.pixel_mean.device, non_blocking=True) for s in samples]
        sizes = [tuple(int(v) for v in im.shape[-2:]) for im in images]
        h, w = (max(s[i] for s in sizes) for i in (0, 1))
        if self.size_divisibility > 1:
            d = self.size_divisibility
            h, w = (h + d - 1) // d * d, (w + d - 1) // d * d
        batch = images[0].new_zeros((len(images), 3, h, w), dtype=torch.float32)  # N x 3 x H x W
        for i, im in enumerate(images):
            batch[i, :, : im.shape[1], : im.shape[2]] = (
                im.float() - self.pixel_mean
            ) / self.pixel_std
        if self.channels_last and batch.is_cuda:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch, sizes

    def _targets(self, samples: List[dict]) -> List[Dict[str, object]]:
        device = self.pixel_mean.device
        targets = []
        for s in samples:
            if "instances" not in s:
                raise ValueError("training samples need 'instances' (boxes, classes[, masks])")
            inst = s["instances"]
            t = {
                "boxes": inst["boxes"].to(device, torch.float32).reshape(-1, 4),
                "classes": inst["classes"].to(device, torch.int64).reshape(-1),
            }
            if "masks" in inst:
                t["masks"] = inst["masks"]
            targets.append(t)
        return targets

    def forward(self, samples: List[dict]):
        """
        Args:
            samples: the mapper's dicts ("image": uint8 3 x h x w; "height", "width": original
                size; "instances" in training).
        Returns:
            training: {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"[, "loss_mask"]};
            evaluation: per image {"boxes": D x 4 XYXY in original pixels, "scores": D,
            "classes": D int64[, "masks": D x height x width bool]}.
        """
        images, sizes = self.preprocess(samples)
        features = self.backbone(images)
        if self.training:
            targets = self._targets(samples)
            proposals, losses = self.rpn(features, sizes, [t["boxes"] for t in targets])
            _, roi_losses = self.roi_heads(features, proposals, sizes, targets)
            return {**losses, **roi_losses}
        proposals, _ = self.rpn(features, sizes)
        detections, _ = self.roi_heads(features, proposals, sizes)
        return [
            detector_postprocess(
                d, size, (int(s.get("height", size[0])), int(s.get("width", size[1])))
            )
            for d, size, s in zip(detections, sizes, samples)
        ]


ROI_HEADS = {heads.__name__: heads for heads in (Res5ROIHeads, StandardROIHeads)}


def detector_postprocess(
    detections: Dict[str, torch.Tensor],
    input_size: Tuple[int, int],
    output_size: Tuple[int, int],
    mask_threshold: float = 0.5,
) -> Dict[str, torch.Tensor]:
    """Rescale detections on the resized image to the original one (detectron2's
    ``detector_postprocess``): boxes scaled and clipped, empty ones dropped, masks pasted at the
    original size.

    Args:
        detections: {"boxes": D x 4, "scores": D, "classes": D[, "mask_probs": D x M x M]}.
        input_size: (h, w) of the resized image the boxes are in.
        output_size: (height, width) of the original image.
    """
    (h, w), (height, width) = input_size, output_size
    boxes = detections["boxes"].clone()  # D x 4
    boxes[:, 0::2] *= width / w
    boxes[:, 1::2] *= height / h
    boxes = clip_boxes_to_image(boxes, (height, width))
    keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])  # D
    out = {
        "boxes": boxes[keep],
        "scores": detections["scores"][keep],
        "classes": detections["classes"][keep],
    }
    if "mask_probs" in detections:
        out["masks"] = paste_masks_in_image(
            detections["mask_probs"][keep], out["boxes"], (height, width), mask_threshold
        )
    return out


# Detectors: the RoI heads each backbone takes, and the maps each backbone outputs.
_DETECTOR_HEADS = {"resnet_c4": "Res5ROIHeads", "resnet_fpn": "StandardROIHeads"}
_DETECTOR_MAPS = {"resnet_c4": ("res4",), "resnet_fpn": ("p2", "p3", "p4", "p5", "p6")}


def validate(cfg, fail) -> None:
    """Cross-checks of a GeneralizedRCNN config (backbone, heads, maps, anchors, thresholds)."""
    backbone = cfg.MODEL.BACKBONE.NAME
    if cfg.MODEL.ROI_HEADS.NAME != _DETECTOR_HEADS[backbone]:
        fail("MODEL.ROI_HEADS.NAME", f"{_DETECTOR_HEADS[backbone]!r} with backbone {backbone!r}")
    maps = _DETECTOR_MAPS[backbone]
    for key in ("MODEL.RPN.IN_FEATURES", "MODEL.ROI_HEADS.IN_FEATURES"):
        features = list(get_key(cfg, key))
        if (
            not features
            or any(f not in maps for f in features)
            or len(set(features)) != len(features)
        ):
            fail(key, f"distinct names among {maps} for backbone {backbone!r}")
    if "p6" in cfg.MODEL.ROI_HEADS.IN_FEATURES:
        fail("MODEL.ROI_HEADS.IN_FEATURES", "maps among p2-p5 (P6 only feeds the RPN)")
    if backbone == "resnet_fpn":
        order = [maps.index(f) for f in cfg.MODEL.ROI_HEADS.IN_FEATURES]
        if order != list(range(order[0], order[0] + len(order))):
            fail("MODEL.ROI_HEADS.IN_FEATURES", "consecutive levels, finest first (e.g. p2-p5)")
    num_levels = len(cfg.MODEL.RPN.IN_FEATURES)
    for key in ("MODEL.ANCHOR_GENERATOR.SIZES", "MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS"):
        value = get_key(cfg, key)
        if len(value) not in (1, num_levels) or any(not v or min(v) <= 0 for v in value):
            fail(key, f"one list of positive values, or one per RPN level ({num_levels})")
    a = cfg.MODEL.ANCHOR_GENERATOR
    sizes = list(a.SIZES) * (num_levels // len(a.SIZES))
    ratios = list(a.ASPECT_RATIOS) * (num_levels // len(a.ASPECT_RATIOS))
    if len({len(s) * len(r) for s, r in zip(sizes, ratios)}) != 1:
        fail("MODEL.ANCHOR_GENERATOR.SIZES", "as many anchors on every level (the head is shared)")
    if not 0.0 <= a.OFFSET < 1.0:
        fail("MODEL.ANCHOR_GENERATOR.OFFSET", "a value in [0, 1)")
    low_high = list(cfg.MODEL.RPN.IOU_THRESHOLDS)
    if len(low_high) != 2 or not 0.0 <= low_high[0] <= low_high[1] <= 1.0:
        fail("MODEL.RPN.IOU_THRESHOLDS", "[low, high] with 0 <= low <= high <= 1")
    iou = list(cfg.MODEL.ROI_HEADS.IOU_THRESHOLDS)
    if len(iou) != 1 or not 0.0 <= iou[0] <= 1.0:
        fail("MODEL.ROI_HEADS.IOU_THRESHOLDS", "one threshold in [0, 1]")
    for key in ("MODEL.RPN.BBOX_REG_WEIGHTS", "MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS"):
        if len(get_key(cfg, key)) != 4 or min(get_key(cfg, key)) <= 0:
            fail(key, "four positive weights (wx, wy, ww, wh)")
    if cfg.MODEL.ROI_BOX_HEAD.EXTRA_NORM and cfg.MODEL.ROI_BOX_HEAD.NORM == "":
        fail("MODEL.ROI_BOX_HEAD.EXTRA_NORM", "False when MODEL.ROI_BOX_HEAD.NORM is ''")
    if backbone == "resnet_fpn" and cfg.MODEL.ROI_BOX_HEAD.NUM_FC < 1:
        fail("MODEL.ROI_BOX_HEAD.NUM_FC", ">= 1 for the FPN box head")
    if cfg.MODEL.ROI_HEADS.RES5_EXTRA_NORM and backbone != "resnet_c4":
        fail("MODEL.ROI_HEADS.RES5_EXTRA_NORM", "False unless MODEL.BACKBONE.NAME is 'resnet_c4'")
    norms = (
        "MODEL.RESNETS.NORM",
        "MODEL.FPN.NORM",
        "MODEL.ROI_BOX_HEAD.NORM",
        "MODEL.ROI_MASK_HEAD.NORM",
    )
    for key in norms:
        if get_key(cfg, key) == "GN" and key != "MODEL.RESNETS.NORM":
            dims = {
                "MODEL.FPN.NORM": "MODEL.FPN.OUT_CHANNELS",
                "MODEL.ROI_BOX_HEAD.NORM": "MODEL.ROI_BOX_HEAD.CONV_DIM",
                "MODEL.ROI_MASK_HEAD.NORM": "MODEL.ROI_MASK_HEAD.CONV_DIM",
            }
            if get_key(cfg, dims[key]) % 32:
                fail(dims[key], f"a multiple of 32 with {key} 'GN'")
    if cfg.MODEL.RESNETS.NORM == "GN" and cfg.MODEL.RESNETS.WIDTH % 32:
        fail("MODEL.RESNETS.WIDTH", "a multiple of 32 with MODEL.RESNETS.NORM 'GN'")


register_method(
    "GeneralizedRCNN",
    task="detection",
    model=GeneralizedRCNN,
    validate=validate,
    arch_keys=("MODEL.MASK_ON", "MODEL.ROI_HEADS.NUM_CLASSES"),
    backbones=tuple(_DETECTOR_HEADS),
)
