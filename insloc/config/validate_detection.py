"""Validation of detection fine-tuning configs: the detectors and their data."""

from fvcore.common.config import CfgNode

from .checks import check_tables, get_key

# ---------------------------------------------------------------------------------------------
# Detection data (fine-tuning)
# ---------------------------------------------------------------------------------------------
_DETECTION_DATA_CHOICES = {
    "INPUT.MIN_SIZE_TRAIN_SAMPLING": ("choice", "range"),
    "INPUT.RANDOM_FLIP": ("horizontal", "none"),
}
_DETECTION_DATA_POSITIVE = (
    "INPUT.MAX_SIZE_TRAIN",
    "INPUT.MAX_SIZE_TEST",
    "DATASETS.SYNTHETIC.NUM_TEST_IMAGES",
)


def validate_detection_data(cfg: CfgNode, fail) -> None:
    """Detection data keys: sizes, sampling, flip, and dataset names or COCO json paths."""
    from ..data.detection.catalog import is_dataset_name  # the catalog imports the data stack

    check_tables(cfg, fail, _DETECTION_DATA_CHOICES, _DETECTION_DATA_POSITIVE)
    if not cfg.INPUT.MIN_SIZE_TEST >= 0:
        fail("INPUT.MIN_SIZE_TEST", "a value >= 0 (0 keeps the original size)")
    sizes = cfg.INPUT.MIN_SIZE_TRAIN
    if not sizes or any(not isinstance(s, int) or s <= 0 for s in sizes):
        fail("INPUT.MIN_SIZE_TRAIN", "a tuple of positive integers")
    if cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING == "range" and (len(sizes) != 2 or sizes[0] > sizes[1]):
        fail("INPUT.MIN_SIZE_TRAIN", "(low, high) with low <= high for sampling 'range'")
    # A dense config's DATASETS.TEST is a matching benchmark (checked in _validate_dense).
    dense = cfg.MODEL.META_ARCHITECTURE == "Dense"
    for key in ("DATASETS.TRAIN",) if dense else ("DATASETS.TRAIN", "DATASETS.TEST"):
        for name in get_key(cfg, key):
            if not isinstance(name, str) or not is_dataset_name(name):
                fail(
                    key,
                    f"dataset names (see README 'Detection data') or COCO json paths "
                    f"'x.json[:image_root]'; {name!r} is neither",
                )


# Detectors: the RoI heads each backbone takes, and the maps each backbone outputs.
_DETECTOR_HEADS = {"resnet_c4": "Res5ROIHeads", "resnet_fpn": "StandardROIHeads"}
_DETECTOR_MAPS = {"resnet_c4": ("res4",), "resnet_fpn": ("p2", "p3", "p4", "p5", "p6")}


def validate_detector(cfg: CfgNode, fail) -> None:
    """Cross-checks of a GeneralizedRCNN config (backbone, heads, maps, anchors, thresholds)."""
    backbone = cfg.MODEL.BACKBONE.NAME
    if backbone not in _DETECTOR_HEADS:
        fail("MODEL.BACKBONE.NAME", f"one of {tuple(_DETECTOR_HEADS)} for a GeneralizedRCNN")
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
