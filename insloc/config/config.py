"""Loading, overriding and validating configs.

A recipe is a yaml file with an optional ``_BASE_`` (a path relative to the file) and only the keys
it changes. Mistakes are reported as a one-line :class:`ConfigError` naming the file or key.
"""

import ast
import os

import yaml
from fvcore.common.config import CfgNode

from .checks import ConfigError, check_tables, get_key
from .defaults import _C
from .registry import BACKBONE_REGISTRY, CONFIG_CHECKS, METHODS, backbone_kind, task_of
from .validate_dense import validate_dense
from .validate_detection import validate_detection_data


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
        check_base_chain(config_file)
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


def check_base_chain(config_file: str, _chain=()) -> None:
    """Check ``config_file`` and the files its ``_BASE_`` names, recursively, before fvcore merges
    them: each must exist, hold a mapping of keys, and not name itself again (a cycle).

    Raises:
        ConfigError: naming the file at fault (for a missing base, the file that names it).
    """
    real = os.path.realpath(config_file)
    if real in _chain:
        cycle = " -> ".join(os.path.relpath(p) for p in (*_chain[_chain.index(real) :], real))
        raise ConfigError(f"{config_file}: _BASE_ files name each other in a cycle: {cycle}")
    try:
        with open(config_file) as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"{config_file}: not valid yaml ({_one_line(e)})") from None
    except OSError as e:
        raise ConfigError(f"config file {config_file!r} cannot be read ({e.strerror})") from None
    if not isinstance(data, dict):
        what = "empty" if data is None else f"a {type(data).__name__}, not a mapping"
        raise ConfigError(f"{config_file} is {what}: expected config keys (e.g. 'SOLVER:')")
    bases = data.get("_BASE_")
    if bases is None:
        return
    for base in bases if isinstance(bases, list) else [bases]:
        if not isinstance(base, str) or not base:
            raise ConfigError(f"{config_file}: _BASE_ = {base!r}, expected a yaml file path")
        # fvcore's rule: ~ is expanded; a relative path is relative to the file that names it
        path = os.path.expanduser(base)
        if not path.startswith("/"):
            path = os.path.join(os.path.dirname(config_file), path)
        if not os.path.isfile(path):
            raise ConfigError(f"{config_file}: its _BASE_ {base!r} does not exist ({path})")
        check_base_chain(path, (*_chain, real))


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


# MODEL.META_ARCHITECTURE and MODEL.BACKBONE.NAME are checked against the registries
# (insloc.config.registry), and each method's keys by the validation it registered.
_CHOICES = {
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
    "SOLVER.CLIP_GRADIENTS.CLIP_TYPE": ("norm", "value"),
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
    "SOLVER.CLIP_GRADIENTS.CLIP_VALUE",
    "SOLVER.CLIP_GRADIENTS.NORM_TYPE",
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


def validate_config(cfg: CfgNode) -> None:
    """Check values that fvcore's type check cannot; raise :class:`ConfigError` naming the key."""

    def fail(key, expected):
        raise ConfigError(f"{key} = {get_key(cfg, key)!r}: expected {expected}")

    check_tables(cfg, fail, _CHOICES, _POSITIVE, _NON_NEGATIVE, _PROBABILITIES)
    for key in _RANGES:
        value = get_key(cfg, key)
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
        if len(get_key(cfg, key)) != 3:
            fail(key, "three values (R, G, B)")
    if min(cfg.MODEL.PIXEL_STD) <= 0:
        fail("MODEL.PIXEL_STD", "positive values")

    validate_method(cfg, fail)
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
        fail(
            "DATASETS.PRETRAIN",
            "a folder, a COCO json, a .txt list of paths, a CIFAR-10 or STL-10 folder, "
            "or 'synthetic'",
        )
    if cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupMultiStepLR":
        steps = list(cfg.SOLVER.STEPS)
        if not steps:
            fail("SOLVER.STEPS", "at least one iteration for 'WarmupMultiStepLR'")
    validate_detection_data(cfg, fail)
    validate_dense(cfg, fail)
    for check in CONFIG_CHECKS:
        check(cfg, fail)


def validate_method(cfg: CfgNode, fail) -> None:
    """The method's backbone, then the validation it registered. A method that is not registered
    in this process is left to the tool that runs it, which looks it up (and names it)."""
    arch, backbone = cfg.MODEL.META_ARCHITECTURE, cfg.MODEL.BACKBONE.NAME
    if task_of(arch) != "detection" and cfg.MODEL.RESNETS.NORM == "FrozenBN":
        fail("MODEL.RESNETS.NORM", "'BN', 'SyncBN' or 'GN' for pretraining (FrozenBN: detectors)")
    method = METHODS.get(arch)
    if method is None:
        return
    registered = [name for name, _ in BACKBONE_REGISTRY]
    if backbone not in registered:
        fail(
            "MODEL.BACKBONE.NAME",
            "a registered backbone, one of " + ", ".join(map(repr, registered)),
        )
    allowed = method.backbones or tuple(
        n
        for n in registered
        if backbone_kind(n) == method.backbone_kind or not method.backbone_kind
    )
    if backbone not in allowed:
        fail("MODEL.BACKBONE.NAME", f"one of {allowed} for MODEL.META_ARCHITECTURE {arch!r}")
    if method.validate is not None:
        method.validate(cfg, fail)
