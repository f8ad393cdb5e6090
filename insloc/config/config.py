"""Loading, overriding and validating configs.

A recipe is a yaml file with an optional ``_BASE_`` (a path relative to the file) and only the keys
it changes. Mistakes are reported as a one-line :class:`ConfigError` naming the file or key.
"""

import ast
import os

import yaml
from fvcore.common.config import CfgNode

from .defaults import _C


class ConfigError(ValueError):
    """A bad config file, key or value; the message names it and says what was expected."""


def get_cfg() -> CfgNode:
    """Return a mutable copy of the defaults."""
    return _C.clone()


def load_config(config_file: str = "", opts=()) -> CfgNode:
    """Defaults, then ``config_file`` (with its ``_BASE_`` chain), then ``KEY VALUE`` overrides.

    Returns a frozen, validated config. Raises :class:`ConfigError` on any mistake.
    """
    cfg = get_cfg()
    if config_file:
        if not os.path.isfile(config_file):
            raise ConfigError(f"config file {config_file!r} does not exist")
        try:
            cfg.merge_from_file(config_file)
        except (KeyError, ValueError, TypeError, AssertionError, yaml.YAMLError) as e:
            raise ConfigError(f"{config_file}: {_one_line(e)}") from None
    opts = list(opts)
    if len(opts) % 2:
        raise ConfigError(f"overrides must be KEY VALUE pairs; {opts[-1]!r} has no value")
    opts = _ints_to_floats(cfg, opts)
    opts = _scalars_to_tuples(cfg, opts)
    try:
        cfg.merge_from_list(opts)
    except (KeyError, ValueError, TypeError, AssertionError) as e:
        raise ConfigError(f"command line override: {_one_line(e)}") from None
    validate_config(cfg)
    cfg.freeze()
    return cfg


def _ints_to_floats(cfg: CfgNode, opts: list) -> list:
    """Let ``SOLVER.BASE_LR 1`` mean 1.0: an integer for a float key is no mistake."""
    out = list(opts)
    for i in range(0, len(out), 2):
        node = cfg
        for part in str(out[i]).split("."):
            node = node.get(part) if isinstance(node, CfgNode) else None
        value = str(out[i + 1])
        if isinstance(node, float) and value.lstrip("+-").isdigit():
            out[i + 1] = value + ".0"
    return out


def _scalars_to_tuples(cfg: CfgNode, opts: list) -> list:
    """Let ``INPUT.MIN_SIZE_TRAIN 800`` and ``DATASETS.TRAIN voc_2007_trainval`` mean
    one-element tuples: a single value for a tuple key is no mistake."""
    out = list(opts)
    for i in range(0, len(out), 2):
        node = cfg
        for part in str(out[i]).split("."):
            node = node.get(part) if isinstance(node, CfgNode) else None
        if not isinstance(node, tuple) or not isinstance(out[i + 1], str):
            continue
        try:
            value = ast.literal_eval(out[i + 1])
        except (ValueError, SyntaxError):
            value = out[i + 1]
        if not isinstance(value, (tuple, list)):
            out[i + 1] = repr((value,))
    return out


def _one_line(e: BaseException) -> str:
    text = str(e.args[0]) if len(e.args) == 1 else str(e)
    return (
        " ".join(text.replace("'", "").split())
        if "Non-existent" in text
        else " ".join(text.split())
    )


_CHOICES = {
    "MODEL.META_ARCHITECTURE": (
        "InsLoc",
        "MoCo",
        "GeneralizedRCNN",
        "Dense",
        "RotNet",
        "Jigsaw",
        "RelativeLoc",
        "Exemplar",
    ),
    "MODEL.BACKBONE.NAME": (
        "resnet_fpn",
        "resnet_c4",
        "resnet",
        "resnet_v2",
        "revnet",
        "vgg19_bn",
        "nin",
        "exemplar_cnn",
    ),
    "MODEL.RESNETS.DEPTH": (18, 34, 50),
    "MODEL.RESNETS.NORM": ("BN", "SyncBN", "GN", "FrozenBN"),
    "MODEL.FPN.NORM": ("BN", "SyncBN", "GN", ""),
    "MODEL.ROI_BOX_HEAD.NORM": ("BN", "SyncBN", "GN", ""),
    "MODEL.ROI_HEADS.NAME": ("Res5ROIHeads", "StandardROIHeads"),
    "MODEL.ROI_BOX_HEAD.POOLER_TYPE": ("ROIAlignV2", "ROIAlign"),
    "MODEL.ROI_MASK_HEAD.POOLER_TYPE": ("ROIAlignV2", "ROIAlign"),
    "MODEL.ROI_MASK_HEAD.NORM": ("BN", "SyncBN", "GN", ""),
    "MODEL.BACKBONE.FREEZE_AT": (0, 1, 2, 3, 4, 5),
    "INPUT.FORMAT": ("RGB",),
    "INPUT.COPY_PASTE.BACKGROUNDS": ("dataset", "batch"),
    "INPUT.RESIZE_INTERPOLATION": ("area", "bilinear"),
    "SOLVER.LR_SCHEDULER_NAME": ("WarmupCosineLR", "WarmupConstantLR", "WarmupMultiStepLR"),
    "SOLVER.AMP.DTYPE": ("bfloat16", "float16"),
    # classic pretext tasks
    "MODEL.NIN.NUM_BLOCKS": (3, 4, 5),
    "MODEL.EXEMPLAR.LOSS": ("softmax", "triplet"),
    "INPUT.RELATIVE_LOC.CHROMATIC": ("none", "drop", "project"),
}

_POSITIVE = (
    "MODEL.RESNETS.WIDTH",
    "MODEL.FPN.OUT_CHANNELS",
    "MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION",
    "MODEL.ROI_BOX_HEAD.CONV_DIM",
    "MODEL.ROI_BOX_HEAD.FC_DIM",
    "MODEL.MOCO.DIM",
    "MODEL.MOCO.QUEUE_SIZE",
    "MODEL.MOCO.TEMPERATURE",
    "MODEL.RPN.BATCH_SIZE_PER_IMAGE",
    "MODEL.RPN.PRE_NMS_TOPK_TRAIN",
    "MODEL.RPN.PRE_NMS_TOPK_TEST",
    "MODEL.RPN.POST_NMS_TOPK_TRAIN",
    "MODEL.RPN.POST_NMS_TOPK_TEST",
    "MODEL.ROI_HEADS.NUM_CLASSES",
    "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE",
    "MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE",
    "MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION",
    "MODEL.ROI_MASK_HEAD.CONV_DIM",
    "MODEL.MOCO.SPLIT_BN_SAMPLES_PER_GROUP",
    "INPUT.CANVAS_SIZE",
    "INPUT.COPY_PASTE.CROP_TRIES",
    "INPUT.MOCO.CROP_SIZE",
    "INPUT.BOX_AUG.ANCHOR_STRIDE",
    "INPUT.BOX_AUG.FALLBACK_TOPK",
    "DATASETS.SYNTHETIC.NUM_IMAGES",
    "DATASETS.SYNTHETIC.IMAGE_SIZE",
    "SOLVER.IMS_PER_BATCH",
    "SOLVER.BASE_LR",
    "LOG_PERIOD",
    # classic pretext tasks
    "MODEL.VGG.WIDTH",
    "MODEL.VGG.FC_DIM",
    "MODEL.NIN.WIDTH",
    "MODEL.JIGSAW.NUM_PERMUTATIONS",
    "MODEL.JIGSAW.TILE_DIM",
    "MODEL.JIGSAW.HIDDEN_DIM",
    "MODEL.RELATIVE_LOC.TILE_DIM",
    "MODEL.RELATIVE_LOC.HIDDEN_DIM",
    "MODEL.EXEMPLAR.NUM_CLASSES",
    "MODEL.EXEMPLAR.EMBED_DIM",
    "MODEL.EXEMPLAR.MARGIN",
    "INPUT.PRETEXT.CROP_SIZE",
    "INPUT.JIGSAW.TILE_SIZE",
    "INPUT.RELATIVE_LOC.TILE_SIZE",
    "INPUT.EXEMPLAR.PATCH_SIZE",
    "INPUT.EXEMPLAR.SEED_SIZE",
    "INPUT.EXEMPLAR.COPIES",
)
_NON_NEGATIVE = (
    "MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO",
    "MODEL.ROI_BOX_HEAD.NUM_CONV",
    "MODEL.ROI_BOX_HEAD.NUM_FC",
    "MODEL.MOCO.MLP_DIM",
    "MODEL.RPN.SMOOTH_L1_BETA",
    "MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA",
    "MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO",
    "MODEL.ROI_MASK_HEAD.NUM_CONV",
    "MODEL.MOCO.SPLIT_BN_GROUPS",
    "SOLVER.MAX_ITER",
    "SOLVER.EPOCHS",
    "SOLVER.CHECKPOINT_PERIOD",
    "SOLVER.CHECKPOINT_PERIOD_EPOCHS",
    "DATALOADER.NUM_WORKERS",
    "SOLVER.REFERENCE_BATCH_SIZE",
    "SOLVER.WEIGHT_DECAY",
    "SOLVER.WARMUP_ITERS",
    "TEST.INSTANCE_DISC_SAMPLES",
    "TEST.EVAL_PERIOD",
    "TEST.PRECISE_BN.NUM_ITER",
    "VIS_SAMPLES",
    "SEED",
    # classic pretext tasks
    "MODEL.JIGSAW.MIN_HAMMING",
    "MODEL.JIGSAW.PERMUTATION_SEED",
    "INPUT.PRETEXT.RESIZE",
    "INPUT.JIGSAW.JITTER",
    "INPUT.RELATIVE_LOC.JITTER",
    "INPUT.EXEMPLAR.TRANSLATE",
    "INPUT.EXEMPLAR.ROTATE",
    "INPUT.EXEMPLAR.HUE",
)
_PROBABILITIES = (
    "INPUT.COLOR.JITTER_PROB",
    "INPUT.COLOR.GRAYSCALE_PROB",
    "INPUT.COLOR.BLUR_PROB",
    "INPUT.COLOR.FLIP_PROB",
    "INPUT.BOX_AUG.IOU_THRESH",
    "INPUT.BOX_AUG.NMS_THRESH",
    "MODEL.MOCO.MOMENTUM",
    "MODEL.RPN.POSITIVE_FRACTION",
    "MODEL.RPN.NMS_THRESH",
    "MODEL.ROI_HEADS.POSITIVE_FRACTION",
    "MODEL.ROI_HEADS.SCORE_THRESH_TEST",
    "MODEL.ROI_HEADS.NMS_THRESH_TEST",
    "SOLVER.MOMENTUM",
    "SOLVER.WARMUP_FACTOR",
)
_RANGES = (  # (low, high) pairs with low <= high
    "INPUT.COPY_PASTE.CROP_SCALE",
    "INPUT.COPY_PASTE.CROP_RATIO",
    "INPUT.COPY_PASTE.PASTE_SIZE",
    "INPUT.MOCO.CROP_SCALE",
    "INPUT.MOCO.CROP_RATIO",
    "INPUT.COLOR.BLUR_SIGMA",
    "INPUT.EXEMPLAR.SCALE",
    "INPUT.EXEMPLAR.CONTRAST_POWER",
)

# Methods of the classic pretext tasks and the trunks they train (all classification trunks).
PRETEXT_METHODS = ("RotNet", "Jigsaw", "RelativeLoc", "Exemplar")
PRETEXT_BACKBONES = ("resnet", "resnet_v2", "revnet", "vgg19_bn", "nin", "exemplar_cnn")


def _get(cfg, key):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def validate_config(cfg: CfgNode) -> None:
    """Check values that fvcore's type check cannot; raise :class:`ConfigError` naming the key."""

    def fail(key, expected):
        raise ConfigError(f"{key} = {_get(cfg, key)!r}: expected {expected}")

    for key, choices in _CHOICES.items():
        if _get(cfg, key) not in choices:
            fail(key, "one of " + ", ".join(repr(c) for c in choices))
    for key in _POSITIVE:
        if not _get(cfg, key) > 0:
            fail(key, "a value > 0")
    for key in _NON_NEGATIVE:
        if not _get(cfg, key) >= 0:
            fail(key, "a value >= 0")
    for key in _PROBABILITIES:
        if not 0.0 <= _get(cfg, key) <= 1.0:
            fail(key, "a value in [0, 1]")
    for key in _RANGES:
        value = _get(cfg, key)
        if len(value) != 2 or not 0 < value[0] <= value[1]:
            fail(key, "a pair (low, high) with 0 < low <= high")
    if cfg.INPUT.COPY_PASTE.PASTE_SIZE[1] > cfg.INPUT.CANVAS_SIZE:
        fail(
            "INPUT.COPY_PASTE.PASTE_SIZE",
            f"sizes no larger than INPUT.CANVAS_SIZE ({cfg.INPUT.CANVAS_SIZE})",
        )
    if cfg.INPUT.COPY_PASTE.CROP_SCALE[1] > 1.0:
        fail("INPUT.COPY_PASTE.CROP_SCALE", "area fractions in (0, 1]")
    if cfg.INPUT.MOCO.CROP_SCALE[1] > 1.0:
        fail("INPUT.MOCO.CROP_SCALE", "area fractions in (0, 1]")
    if len(cfg.INPUT.COLOR.JITTER) != 4 or min(cfg.INPUT.COLOR.JITTER) < 0:
        fail(
            "INPUT.COLOR.JITTER",
            "four non-negative strengths (brightness, contrast, saturation, hue)",
        )
    if cfg.INPUT.COLOR.JITTER[3] > 0.5:
        fail("INPUT.COLOR.JITTER", "a hue strength <= 0.5")
    for key in ("MODEL.PIXEL_MEAN", "MODEL.PIXEL_STD"):
        if len(_get(cfg, key)) != 3:
            fail(key, "three values (R, G, B)")
    if min(cfg.MODEL.PIXEL_STD) <= 0:
        fail("MODEL.PIXEL_STD", "positive values")

    if cfg.MODEL.META_ARCHITECTURE == "GeneralizedRCNN":
        _validate_detector(cfg, fail)
        return
    if cfg.MODEL.RESNETS.NORM == "FrozenBN":
        fail("MODEL.RESNETS.NORM", "'BN', 'SyncBN' or 'GN' for pretraining (FrozenBN: detectors)")
    head = cfg.MODEL.ROI_BOX_HEAD
    if cfg.MODEL.META_ARCHITECTURE == "InsLoc":
        expected_backbones = ("resnet_fpn", "resnet_c4")
        valid = {"resnet_fpn": ("p2", "p3", "p4", "p5"), "resnet_c4": ("res4",)}
    elif cfg.MODEL.META_ARCHITECTURE in PRETEXT_METHODS:
        expected_backbones = PRETEXT_BACKBONES
        valid = {}
    else:
        expected_backbones = ("resnet",)
        valid = {}
    if cfg.MODEL.BACKBONE.NAME not in expected_backbones:
        fail(
            "MODEL.BACKBONE.NAME",
            f"one of {expected_backbones} for MODEL.META_ARCHITECTURE "
            f"{cfg.MODEL.META_ARCHITECTURE!r}",
        )
    if cfg.MODEL.META_ARCHITECTURE == "InsLoc":
        names = valid[cfg.MODEL.BACKBONE.NAME]
        features = list(head.IN_FEATURES)
        if (
            not features
            or any(f not in names for f in features)
            or len(set(features)) != len(features)
        ):
            fail(
                "MODEL.ROI_BOX_HEAD.IN_FEATURES",
                f"distinct names among {names} for backbone " f"{cfg.MODEL.BACKBONE.NAME!r}",
            )
        if head.LOSS_WEIGHTS and len(head.LOSS_WEIGHTS) != len(features):
            fail("MODEL.ROI_BOX_HEAD.LOSS_WEIGHTS", f"{len(features)} weights, one per IN_FEATURES")
        for key in ("INPUT.BOX_AUG.QUERY_FEATURES", "INPUT.BOX_AUG.KEY_FEATURES"):
            if any(f not in features for f in _get(cfg, key)):
                fail(key, f"names among MODEL.ROI_BOX_HEAD.IN_FEATURES {features}")
    if cfg.MODEL.RESNETS.NORM == "GN" and cfg.MODEL.RESNETS.WIDTH % 32:
        fail("MODEL.RESNETS.WIDTH", "a multiple of 32 with MODEL.RESNETS.NORM 'GN'")
    steps = list(cfg.SOLVER.STEPS)
    if steps != sorted(steps) or any(s <= 0 for s in steps):
        fail("SOLVER.STEPS", "increasing positive iterations")
    if cfg.SOLVER.WEIGHT_DECAY_NORM < 0 and cfg.SOLVER.WEIGHT_DECAY_NORM != -1:
        fail("SOLVER.WEIGHT_DECAY_NORM", "a value >= 0, or -1 for SOLVER.WEIGHT_DECAY")
    if not 0.0 < cfg.SOLVER.GAMMA <= 1.0:
        fail("SOLVER.GAMMA", "a factor in (0, 1]")
    if cfg.SOLVER.MAX_ITER == 0 and cfg.SOLVER.EPOCHS == 0:
        fail("SOLVER.MAX_ITER", "iterations > 0, or 0 with SOLVER.EPOCHS > 0")
    if cfg.SOLVER.CHECKPOINT_PERIOD == 0 and cfg.SOLVER.CHECKPOINT_PERIOD_EPOCHS == 0:
        fail(
            "SOLVER.CHECKPOINT_PERIOD",
            "iterations > 0, or 0 with SOLVER.CHECKPOINT_PERIOD_EPOCHS > 0",
        )
    if cfg.DATASETS.PRETRAIN == "":
        fail("DATASETS.PRETRAIN", "a folder, a COCO json, a .txt list of paths, or 'synthetic'")
    if cfg.MODEL.META_ARCHITECTURE in PRETEXT_METHODS:
        _validate_pretext(cfg, fail)
    if cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupMultiStepLR":
        steps = list(cfg.SOLVER.STEPS)
        if not steps:
            fail("SOLVER.STEPS", "at least one iteration for 'WarmupMultiStepLR'")
        if steps[-1] >= cfg.SOLVER.MAX_ITER:
            fail("SOLVER.STEPS", f"iterations below SOLVER.MAX_ITER ({cfg.SOLVER.MAX_ITER})")
    _validate_detection_data(cfg)
    _validate_dense(cfg, fail)


def _validate_pretext(cfg: CfgNode, fail) -> None:
    """Cross-checks of the classic pretext tasks: the trunk, the crops and each method's keys."""
    from math import factorial

    arch, backbone = cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.BACKBONE.NAME
    if backbone in ("resnet_v2", "revnet") and cfg.MODEL.RESNETS.DEPTH != 50:
        fail("MODEL.RESNETS.DEPTH", f"50 for MODEL.BACKBONE.NAME {backbone!r}")
    if backbone == "exemplar_cnn" and arch != "Exemplar":
        fail("MODEL.BACKBONE.NAME", "'exemplar_cnn' only with MODEL.META_ARCHITECTURE 'Exemplar'")
    if cfg.TEST.INSTANCE_DISC_SAMPLES:
        fail("TEST.INSTANCE_DISC_SAMPLES", f"0 for MODEL.META_ARCHITECTURE {arch!r} (no embedding)")
    if cfg.VIS_SAMPLES:
        fail("VIS_SAMPLES", f"0 for MODEL.META_ARCHITECTURE {arch!r} (composites are InsLoc's)")
    crop = cfg.INPUT.PRETEXT.CROP_SIZE
    if cfg.INPUT.PRETEXT.RESIZE and cfg.INPUT.PRETEXT.RESIZE < crop:
        fail("INPUT.PRETEXT.RESIZE", f"0 or a side >= INPUT.PRETEXT.CROP_SIZE ({crop})")
    if arch == "RotNet":
        angles = list(cfg.MODEL.ROTATION.ANGLES)
        if len(angles) < 2 or len(set(a % 360 for a in angles)) != len(angles):
            fail("MODEL.ROTATION.ANGLES", "at least two distinct angles (degrees, modulo 360)")
        if any(a % 45 for a in angles):
            fail("MODEL.ROTATION.ANGLES", "multiples of 45 degrees")
    for method, key in (("Jigsaw", "JIGSAW"), ("RelativeLoc", "RELATIVE_LOC")):
        if arch != method:
            continue
        tile, jitter = cfg.INPUT[key].TILE_SIZE, cfg.INPUT[key].JITTER
        if tile + 2 * jitter > crop // 3:
            fail(
                f"INPUT.{key}.TILE_SIZE",
                f"TILE_SIZE + 2 JITTER ({tile} + 2 x {jitter}) <= INPUT.PRETEXT.CROP_SIZE / 3 "
                f"({crop // 3}), the 3x3 cells the tiles sit in",
            )
    if arch == "Jigsaw" and cfg.MODEL.JIGSAW.NUM_PERMUTATIONS > factorial(9):
        fail("MODEL.JIGSAW.NUM_PERMUTATIONS", "at most 9! = 362880")
    if arch == "Jigsaw" and cfg.MODEL.JIGSAW.MIN_HAMMING > 9:
        fail("MODEL.JIGSAW.MIN_HAMMING", "at most 9 (nine tiles)")
    if arch == "Exemplar":
        patch = cfg.INPUT.EXEMPLAR.PATCH_SIZE
        if cfg.INPUT.EXEMPLAR.SEED_SIZE > crop:
            fail("INPUT.EXEMPLAR.SEED_SIZE", f"a side <= INPUT.PRETEXT.CROP_SIZE ({crop})")
        if cfg.MODEL.EXEMPLAR.LOSS == "triplet" and cfg.INPUT.EXEMPLAR.COPIES < 2:
            fail("INPUT.EXEMPLAR.COPIES", "at least 2 with MODEL.EXEMPLAR.LOSS 'triplet'")
        if backbone == "exemplar_cnn" and patch < 16:
            fail("INPUT.EXEMPLAR.PATCH_SIZE", "at least 16 for the Exemplar-CNN networks")


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


def _validate_detection_data(cfg: CfgNode) -> None:
    from ..data.detection.catalog import is_dataset_name  # the catalog imports the data stack

    def fail(key, expected):
        raise ConfigError(f"{key} = {_get(cfg, key)!r}: expected {expected}")

    for key, choices in _DETECTION_DATA_CHOICES.items():
        if _get(cfg, key) not in choices:
            fail(key, "one of " + ", ".join(repr(c) for c in choices))
    for key in _DETECTION_DATA_POSITIVE:
        if not _get(cfg, key) > 0:
            fail(key, "a value > 0")
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
        for name in _get(cfg, key):
            if not isinstance(name, str) or not is_dataset_name(name):
                fail(
                    key,
                    f"dataset names (see README 'Detection data') or COCO json paths "
                    f"'x.json[:image_root]'; {name!r} is neither",
                )


# Detectors: the RoI heads each backbone takes, and the maps each backbone outputs.
_DETECTOR_HEADS = {"resnet_c4": "Res5ROIHeads", "resnet_fpn": "StandardROIHeads"}
_DETECTOR_MAPS = {"resnet_c4": ("res4",), "resnet_fpn": ("p2", "p3", "p4", "p5", "p6")}


def _validate_detector(cfg: CfgNode, fail) -> None:
    """Cross-checks of a GeneralizedRCNN config (backbone, heads, maps, anchors, thresholds)."""
    backbone = cfg.MODEL.BACKBONE.NAME
    if backbone not in _DETECTOR_HEADS:
        fail("MODEL.BACKBONE.NAME", f"one of {tuple(_DETECTOR_HEADS)} for a GeneralizedRCNN")
    if cfg.MODEL.ROI_HEADS.NAME != _DETECTOR_HEADS[backbone]:
        fail("MODEL.ROI_HEADS.NAME", f"{_DETECTOR_HEADS[backbone]!r} with backbone {backbone!r}")
    maps = _DETECTOR_MAPS[backbone]
    for key in ("MODEL.RPN.IN_FEATURES", "MODEL.ROI_HEADS.IN_FEATURES"):
        features = list(_get(cfg, key))
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
        value = _get(cfg, key)
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
        if len(_get(cfg, key)) != 4 or min(_get(cfg, key)) <= 0:
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
        if _get(cfg, key) == "GN" and key != "MODEL.RESNETS.NORM":
            dims = {
                "MODEL.FPN.NORM": "MODEL.FPN.OUT_CHANNELS",
                "MODEL.ROI_BOX_HEAD.NORM": "MODEL.ROI_BOX_HEAD.CONV_DIM",
                "MODEL.ROI_MASK_HEAD.NORM": "MODEL.ROI_MASK_HEAD.CONV_DIM",
            }
            if _get(cfg, dims[key]) % 32:
                fail(dims[key], f"a multiple of 32 with {key} 'GN'")
    if cfg.MODEL.RESNETS.NORM == "GN" and cfg.MODEL.RESNETS.WIDTH % 32:
        fail("MODEL.RESNETS.WIDTH", "a multiple of 32 with MODEL.RESNETS.NORM 'GN'")


# ------------------------------------------------------------------ dense features and matching
_DENSE_CHOICES = {
    "MODEL.RESNETS.RES5_DILATION": (1, 2),
    "DENSE.HEAD": ("Introspection", "AnchorNet", ""),
    "MATCHING.METHOD": ("nn", "mutual_nn", "soft_argmax"),
    "MATCHING.PCK_NORM": ("default", "image", "bbox", "kps", "kps_padded"),
    "MATCHING.PCK_RESIZE": ("default", "original", "resized"),
    "MATCHING.PCK_AVERAGE": ("default", "per_image", "per_keypoint"),
    "MATCHING.SPAIR_SPLIT": ("test", "val", "trn"),
}
_DENSE_POSITIVE = (
    "DENSE.INPUT_SIZE",
    "DENSE.FEATURES.STRIDE",
    "DENSE.INTROSPECTION.DIM",
    "DENSE.INTROSPECTION.NUM_POINTS",
    "DENSE.INTROSPECTION.NUM_HARD_NEGATIVES",
    "DENSE.INTROSPECTION.MIN_SIGMA",
    "DENSE.ANCHORNET.NUM_CLASSES",
    "DENSE.ANCHORNET.NUM_FILTERS",
    "DENSE.ANCHORNET.FILTER_SIZE",
    "DENSE.ANCHORNET.AE_DIM",
    "MATCHING.TEMPERATURE",
    "MATCHING.WARP_PAIRS",
    "MATCHING.WARP_KEYPOINTS",
    "MATCHING.SYNTHETIC_IMAGES",
)
_DENSE_NON_NEGATIVE = (
    "DENSE.FEATURES.REDUCE_DIM",
    "DENSE.INTROSPECTION.POS_DIST",
    "DENSE.ANCHORNET.AVG_POOL_WEIGHT",
    "DENSE.WARP.HOMOGRAPHY",
    "DENSE.WARP.TPS",
    "MATCHING.MAX_PAIRS",
)


def _validate_dense(cfg: CfgNode, fail) -> None:
    for key, choices in _DENSE_CHOICES.items():
        if _get(cfg, key) not in choices:
            fail(key, "one of " + ", ".join(repr(c) for c in choices))
    for key in _DENSE_POSITIVE:
        if not _get(cfg, key) > 0:
            fail(key, "a value > 0")
    for key in _DENSE_NON_NEGATIVE:
        if not _get(cfg, key) >= 0:
            fail(key, "a value >= 0")
    for key in ("DENSE.ANCHORNET.AE_DROPOUT", "DENSE.WARP.COLOR_PROB"):
        if not 0.0 <= _get(cfg, key) <= 1.0:
            fail(key, "a value in [0, 1]")
    if cfg.MODEL.META_ARCHITECTURE == "Dense" and len(cfg.DATASETS.TEST) > 1:
        fail("DATASETS.TEST", "one matching benchmark (a dataset root or warp:<folder>) or none")
    layers = list(cfg.DENSE.FEATURES.LAYERS)
    stages = ("res2", "res3", "res4", "res5")
    if not layers or any(f not in stages for f in layers) or len(set(layers)) != len(layers):
        fail("DENSE.FEATURES.LAYERS", f"distinct names among {stages}")
    if cfg.DENSE.INTROSPECTION.NEG_DIST <= cfg.DENSE.INTROSPECTION.POS_DIST:
        fail("DENSE.INTROSPECTION.NEG_DIST", "a distance above DENSE.INTROSPECTION.POS_DIST")
    if len(cfg.DENSE.ANCHORNET.LOSS_WEIGHTS) != 4 or min(cfg.DENSE.ANCHORNET.LOSS_WEIGHTS) < 0:
        fail("DENSE.ANCHORNET.LOSS_WEIGHTS", "four non-negative weights")
    if cfg.DENSE.WARP.TPS_GRID < 2:
        fail("DENSE.WARP.TPS_GRID", "at least 2 (a 2 x 2 lattice of control points)")
    if len(cfg.DENSE.WARP.COLOR_JITTER) != 4 or min(cfg.DENSE.WARP.COLOR_JITTER) < 0:
        fail("DENSE.WARP.COLOR_JITTER", "four non-negative strengths")
    if cfg.MODEL.RESNETS.RES5_DILATION == 2 and (
        cfg.MODEL.BACKBONE.NAME != "resnet" or cfg.MODEL.RESNETS.DEPTH != 50
    ):
        fail("MODEL.RESNETS.RES5_DILATION", "1 unless MODEL.BACKBONE.NAME is 'resnet' and depth 50")
