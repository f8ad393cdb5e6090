"""Config keys of the classic pretext tasks and the trunks of "Revisiting SSL"."""

from fvcore.common.config import CfgNode as CN


def add_pretext_config(_C: CN) -> None:
    """Add the keys below to ``_C``, the defaults of insloc.config.defaults."""
    # ---------------------------------------------------------------------------------------------
    # Classic pretext tasks (RotNet, jigsaw, relative patch location, Exemplar-CNN) and the trunks
    # of "Revisiting Self-Supervised Visual Representation Learning" (Kolesnikov et al. 2019)
    # ---------------------------------------------------------------------------------------------
    # False: the "(-)" variants without the ReLU before global pooling (resnet, resnet_v2, revnet).
    _C.MODEL.RESNETS.LAST_RELU = True
    _C.MODEL.VGG = CN()
    # VGG-19-BN: channels of block1 (blocks 2-5 have 2, 4, 8, 8 times as many).
    _C.MODEL.VGG.WIDTH = 64
    # VGG-19-BN: channels of fc6 and fc7 (1x1 convs; fc7 is the pre-logits).
    _C.MODEL.VGG.FC_DIM = 4096
    _C.MODEL.NIN = CN()
    # RotNet's CIFAR network-in-network: number of 3-conv blocks (3, 4 or 5).
    _C.MODEL.NIN.NUM_BLOCKS = 4
    # Channels of its convs (192 in the paper).
    _C.MODEL.NIN.WIDTH = 192
    _C.MODEL.EXEMPLAR_CNN = CN()
    # Exemplar-CNN network spec: "64c5-64c5-128f", "64c5-128c5-256c5-512f",
    # "92c5-256c5-512c5-1024f".
    _C.MODEL.EXEMPLAR_CNN.SPEC = "64c5-128c5-256c5-512f"
    _C.MODEL.ROTATION = CN()
    # Rotations (degrees) whose index is the label; multiples of 90 are exact, 45 interpolates.
    _C.MODEL.ROTATION.ANGLES = (0, 90, 180, 270)
    _C.MODEL.JIGSAW = CN()
    # Size of the permutation set (greedy maximal minimum Hamming distance over all 9! orders).
    _C.MODEL.JIGSAW.NUM_PERMUTATIONS = 100
    # The set must reach this minimum pairwise Hamming distance, else the run stops.
    _C.MODEL.JIGSAW.MIN_HAMMING = 2
    # Seed of the permutation set's first element (the set is the same in every process and run).
    _C.MODEL.JIGSAW.PERMUTATION_SEED = 0
    # Per-tile fc on the pooled tile features (Noroozi & Favaro's fc6: 512).
    _C.MODEL.JIGSAW.TILE_DIM = 512
    # Hidden fc on the 9 concatenated tile features (their fc7: 4096).
    _C.MODEL.JIGSAW.HIDDEN_DIM = 4096
    _C.MODEL.RELATIVE_LOC = CN()
    # Per-patch fc and hidden fc on the concatenated pair (Doersch et al.: fc6 per patch, fc7 4096).
    _C.MODEL.RELATIVE_LOC.TILE_DIM = 512
    _C.MODEL.RELATIVE_LOC.HIDDEN_DIM = 4096
    _C.MODEL.EXEMPLAR = CN()
    # Surrogate classes: one seed patch from each of the first NUM_CLASSES images of the source.
    _C.MODEL.EXEMPLAR.NUM_CLASSES = 8000
    # "softmax" (classification over the surrogate classes, the paper) or "triplet" (Revisiting
    # SSL).
    _C.MODEL.EXEMPLAR.LOSS = "softmax"
    # Triplet variant: embedding dimension (L2 normalised) and margin of the batch-hard triplet
    # loss.
    _C.MODEL.EXEMPLAR.EMBED_DIM = 128
    _C.MODEL.EXEMPLAR.MARGIN = 0.5

    _C.INPUT.PRETEXT = CN()
    # Every pretext sample starts from the image resized to this shorter side (0: as it is) ...
    _C.INPUT.PRETEXT.RESIZE = 256
    # ... then a random square crop of this side, flipped with INPUT.COLOR.FLIP_PROB.
    _C.INPUT.PRETEXT.CROP_SIZE = 224
    _C.INPUT.JIGSAW = CN()
    # Tile side inside each of the 3x3 cells of side CROP_SIZE / 3 (Noroozi & Favaro: 64 in 75).
    _C.INPUT.JIGSAW.TILE_SIZE = 64
    # Largest shift of a tile from its cell's centre, in pixels (gaps stay >= cell - tile - 2
    # jitter).
    _C.INPUT.JIGSAW.JITTER = 5
    _C.INPUT.RELATIVE_LOC = CN()
    # Patch side inside each 3x3 cell of side CROP_SIZE / 3 (Doersch et al.: 96, gap 48).
    _C.INPUT.RELATIVE_LOC.TILE_SIZE = 96
    # Largest shift of a patch from its cell's centre (Doersch et al.: 7).
    _C.INPUT.RELATIVE_LOC.JITTER = 7
    # Chromatic-aberration counter-measure: "none", "drop" (keep one random channel, the others
    # Gaussian noise) or "project" (remove the green-magenta colour axis).
    _C.INPUT.RELATIVE_LOC.CHROMATIC = "none"
    _C.INPUT.EXEMPLAR = CN()
    # Side of the network's input patches (32 in the paper).
    _C.INPUT.EXEMPLAR.PATCH_SIZE = 32
    # Side of the seed region in the resized image that a patch covers before its transformation.
    _C.INPUT.EXEMPLAR.SEED_SIZE = 32
    # Transformed copies of each surrogate class per sample (the batch holds IMS_PER_BATCH x
    # COPIES).
    _C.INPUT.EXEMPLAR.COPIES = 8
    # Translation (fraction of the seed side), scale range, rotation (degrees, +-).
    _C.INPUT.EXEMPLAR.TRANSLATE = 0.2
    _C.INPUT.EXEMPLAR.SCALE = (0.7, 1.4)
    _C.INPUT.EXEMPLAR.ROTATE = 20.0
    # Contrast: saturation and value raised to a power in this range (log-uniform), then hue shift
    # +-.
    _C.INPUT.EXEMPLAR.CONTRAST_POWER = (0.25, 4.0)
    _C.INPUT.EXEMPLAR.HUE = 0.1
