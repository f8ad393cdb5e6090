"""Validation of dense-feature and keypoint-matching configs (dense_match)."""

from fvcore.common.config import CfgNode

from .checks import check_tables

# ------------------------------------------------------------------ dense features and matching
_DENSE_CHOICES = {
    "MODEL.RESNETS.RES5_DILATION": (1, 2),
    "DENSE.HEAD": ("Introspection", "AnchorNet", ""),
    "MATCHING.METHOD": ("nn", "mutual_nn", "soft_argmax", "identity"),
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


def validate_dense(cfg: CfgNode, fail) -> None:
    probabilities = ("DENSE.ANCHORNET.AE_DROPOUT", "DENSE.WARP.COLOR_PROB")
    check_tables(cfg, fail, _DENSE_CHOICES, _DENSE_POSITIVE, _DENSE_NON_NEGATIVE, probabilities)
    if cfg.MODEL.META_ARCHITECTURE == "Dense" and len(cfg.DATASETS.TEST) > 1:
        fail("DATASETS.TEST", "one matching benchmark (a dataset root or warp:<folder>) or none")
    layers = list(cfg.DENSE.FEATURES.LAYERS)
    stages = ("res2", "res3", "res4", "res5")
    if not layers or any(f not in stages for f in layers) or len(set(layers)) != len(layers):
        fail("DENSE.FEATURES.LAYERS", f"distinct names among {stages}")
    if cfg.DENSE.INTROSPECTION.NEG_DIST <= cfg.DENSE.INTROSPECTION.POS_DIST:
        fail("DENSE.INTROSPECTION.NEG_DIST", "a distance above DENSE.INTROSPECTION.POS_DIST")
    if cfg.DENSE.INTROSPECTION.MAX_SIGMA <= cfg.DENSE.INTROSPECTION.MIN_SIGMA:
        fail("DENSE.INTROSPECTION.MAX_SIGMA", "a bound above DENSE.INTROSPECTION.MIN_SIGMA")
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
