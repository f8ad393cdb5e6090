"""Faster / Mask R-CNN for fine-tuning (R50-C4, R50-FPN) with detectron2's numerics."""

from .anchors import AnchorGenerator
from .fast_rcnn import FastRCNNPredictor
from .mask_ops import paste_masks_in_image, rasterize_polygons_within_box
from .poolers import LevelRoIPooler, assign_boxes_to_levels
from .rcnn import GeneralizedRCNN, detector_postprocess
from .roi_heads import Res5ROIHeads, StandardROIHeads
from .rpn import RPN, RPNHead

__all__ = [
    "RPN",
    "AnchorGenerator",
    "FastRCNNPredictor",
    "GeneralizedRCNN",
    "LevelRoIPooler",
    "RPNHead",
    "Res5ROIHeads",
    "StandardROIHeads",
    "assign_boxes_to_levels",
    "detector_postprocess",
    "paste_masks_in_image",
    "rasterize_polygons_within_box",
]
