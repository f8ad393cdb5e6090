"""Config keys of dense features and keypoint matching (dense_match)."""

from fvcore.common.config import CfgNode as CN


def add_dense_config(_C: CN) -> None:
    """Add the keys below to ``_C``, the defaults of insloc.config.defaults."""
    # ---------------------------------------------------------------------------------------------
    # Dense features and keypoint matching (dense_match: tools/train_dense.py,
    # tools/eval_matching.py)
    # ---------------------------------------------------------------------------------------------
    # 2 runs res5 at stride 1 with dilation 2 (introspection: 14 x 14 res5 for a 224 input); 1 the
    # standard trunk. MODEL.BACKBONE.NAME "resnet" only.
    _C.MODEL.RESNETS.RES5_DILATION = 1
    # MODEL.WEIGHTS (above) for dense models: an insloc pretraining or dense checkpoint, a
    # torchvision ResNet state-dict file, or "". DATASETS.TEST (above) for MODEL.META_ARCHITECTURE
    # "Dense": one PF-PASCAL, PF-WILLOW or SPair-71k root or "warp:<image folder>"; () is synthetic
    # warps of insloc's synthetic scenes. Dense training images. Introspection: any
    # DATASETS.PRETRAIN source (warped pairs are made from it); AnchorNet: a folder per class, a
    # COCO json (image-level labels; file names relative to DATASETS.IMAGE_ROOT), or "synthetic".
    _C.DATASETS.DENSE_TRAIN = "synthetic"

    _C.DENSE = CN()
    # Head in dense_match.DENSE_HEAD_REGISTRY: "Introspection", "AnchorNet", or "" (the backbone
    # features as they are, L2-normalised per location: random, pretrained or torchvision weights).
    _C.DENSE.HEAD = "Introspection"
    # Side of the square every image is resized to for training and matching (aspect not kept).
    _C.DENSE.INPUT_SIZE = 224

    _C.DENSE.FEATURES = CN()
    # Trunk stages giving the features, "res2".."res5": one name is a single layer, several a
    # hypercolumn.
    _C.DENSE.FEATURES.LAYERS = ["res5"]
    # Hypercolumn: channels of each stage's 1x1 reduction ("PCA" conv; 0: no reduction).
    _C.DENSE.FEATURES.REDUCE_DIM = 0
    # Hypercolumn: stride, in input pixels, that every stage is bilinearly resampled to.
    _C.DENSE.FEATURES.STRIDE = 8
    # Hypercolumn: ReLU on each stage before its reduction (AnchorNet).
    _C.DENSE.FEATURES.RELU = False

    _C.DENSE.INTROSPECTION = CN()
    # Channels of the descriptor phi (a 1x1 conv on the features, L2-normalised per location).
    _C.DENSE.INTROSPECTION.DIM = 128
    # A pair is positive when its distance in the warped image is under POS_DIST input pixels,
    # negative over NEG_DIST, ignored between (paper: 1 and 30).
    _C.DENSE.INTROSPECTION.POS_DIST = 1.0
    _C.DENSE.INTROSPECTION.NEG_DIST = 30.0
    # Locations sampled per image pair (paper: 700) and hardest negatives kept per positive (30).
    _C.DENSE.INTROSPECTION.NUM_POINTS = 700
    _C.DENSE.INTROSPECTION.NUM_HARD_NEGATIVES = 30
    # Negatives cost max(0, s - MARGIN) in the likelihood's exponent (ours: the paper leaves it
    # out).
    _C.DENSE.INTROSPECTION.MARGIN = 0.5
    # Bounds of the inverse confidence sigma, log-uniform between them through a sigmoid (ours: an
    # unbounded sigma runs away to ~1000 under SGD from a random start, where the loss is log 2
    # whatever the descriptors).
    _C.DENSE.INTROSPECTION.MIN_SIGMA = 0.01
    _C.DENSE.INTROSPECTION.MAX_SIGMA = 100.0

    _C.DENSE.ANCHORNET = CN()
    # Classes with anchor filters (the training set's image-level classes) and filters per class K.
    _C.DENSE.ANCHORNET.NUM_CLASSES = 5
    _C.DENSE.ANCHORNET.NUM_FILTERS = 10
    # Side of the anchor filters (3 x 3 in the paper).
    _C.DENSE.ANCHORNET.FILTER_SIZE = 3
    # Loss weights: discriminability, filter orthogonality, response-map orthogonality,
    # auto-encoder.
    _C.DENSE.ANCHORNET.LOSS_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
    # Weight of the global-average-pooling term on images of other classes.
    _C.DENSE.ANCHORNET.AVG_POOL_WEIGHT = 1.0
    # Denoising auto-encoder: code channels and channel dropout on its input (paper: 25%).
    _C.DENSE.ANCHORNET.AE_DIM = 256
    _C.DENSE.ANCHORNET.AE_DROPOUT = 0.25

    _C.DENSE.WARP = CN()
    # Random homography: each corner moves by up to this fraction of the side.
    _C.DENSE.WARP.HOMOGRAPHY = 0.15
    # Thin-plate spline: control points on a GRID x GRID lattice, each moved by up to TPS x the
    # side.
    _C.DENSE.WARP.TPS_GRID = 3
    _C.DENSE.WARP.TPS = 0.05
    # Colour jitter of the warped view (brightness, contrast, saturation, hue) and its probability.
    _C.DENSE.WARP.COLOR_JITTER = (0.4, 0.4, 0.4, 0.1)
    _C.DENSE.WARP.COLOR_PROB = 0.8

    _C.MATCHING = CN()
    # Keypoint transfer: "nn" (nearest neighbour on cosine similarity), "mutual_nn" (non-mutual
    # matches count as wrong), "soft_argmax", or "identity" (same relative position: the floor).
    _C.MATCHING.METHOD = "nn"
    # Soft-argmax temperature on cosine similarities.
    _C.MATCHING.TEMPERATURE = 0.02
    # Divide similarities by the target location's sigma (heads that predict one) before choosing.
    _C.MATCHING.SIGMA_WEIGHTING = False
    # PCK normaliser: "default" (the dataset's, see dense_match.pck), "image", "bbox", "kps" or
    # "kps_padded" (the keypoint box of evaluators that padded keypoint arrays with -1).
    _C.MATCHING.PCK_NORM = "default"
    # Pixels PCK is measured in: "default", "original" or "resized" (DENSE.INPUT_SIZE square).
    _C.MATCHING.PCK_RESIZE = "default"
    # "default", "per_image" (mean of per-pair PCKs) or "per_keypoint" (all keypoints pooled).
    _C.MATCHING.PCK_AVERAGE = "default"
    # Evaluate at most this many pairs (0: all), in the dataset's order.
    _C.MATCHING.MAX_PAIRS = 0
    # PF-PASCAL pair list ("" = <root>/test_pairs.csv).
    _C.MATCHING.PF_PASCAL_PAIRS = ""
    # SPair-71k split: "test", "val" or "trn".
    _C.MATCHING.SPAIR_SPLIT = "test"
    # Synthetic-warp benchmarks: pairs, keypoints per pair, seed; the default's scenes and their
    # side.
    _C.MATCHING.WARP_PAIRS = 50
    _C.MATCHING.WARP_KEYPOINTS = 20
    _C.MATCHING.WARP_SEED = 0
    _C.MATCHING.SYNTHETIC_IMAGES = 50
    # Dense training: pairs of DATASETS.TEST matched before training, every TEST.EVAL_PERIOD
    # iterations and at the end (0: no evaluation during training).
    _C.TEST.MATCHING_PAIRS = 0
