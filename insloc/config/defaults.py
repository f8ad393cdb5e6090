"""Every config key of insloc, with its default and a one-line comment.

Recipes in ``configs/`` set ``_BASE_`` and only their differences; the command line overrides with
``KEY VALUE`` pairs. Defaults follow the official InsLoc R50-FPN ImageNet recipe (PROTOCOLS.md).
"""

from fvcore.common.config import CfgNode as CN

_C = CN()
_C.VERSION = 1

# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
_C.MODEL = CN()
# A name in insloc.modeling.META_ARCH_REGISTRY: "InsLoc" or "MoCo" (pretraining),
# "GeneralizedRCNN" (Faster / Mask R-CNN fine-tuning), or a classic pretext task: "RotNet",
# "Jigsaw", "RelativeLoc", "Exemplar" (section below).
_C.MODEL.META_ARCHITECTURE = "InsLoc"
# "auto" (CUDA when available), "cpu" or "cuda"; under torchrun each process takes cuda:LOCAL_RANK.
_C.MODEL.DEVICE = "auto"
# Normalisation of RGB input in 0-255 (shared with fine-tuning: INPUT.FORMAT RGB).
_C.MODEL.PIXEL_MEAN = [123.675, 116.28, 103.53]
_C.MODEL.PIXEL_STD = [58.395, 57.12, 57.375]
# Use the channels_last memory format on CUDA (faster convolutions with AMP).
_C.MODEL.CHANNELS_LAST = True

# Initial weights of a fine-tuning run: an insloc pretraining or fine-tuning checkpoint, a
# torchvision-format state dict file, a detectron2 .pkl, or "" (random init). See README.
_C.MODEL.WEIGHTS = ""

_C.MODEL.BACKBONE = CN()
# Backbone builder in insloc.modeling.BACKBONE_REGISTRY: "resnet_fpn", "resnet_c4" or "resnet";
# the classic pretext tasks also take "resnet_v2", "revnet", "vgg19_bn", "nin", "exemplar_cnn".
_C.MODEL.BACKBONE.NAME = "resnet_fpn"

_C.MODEL.RESNETS = CN()
# 18, 34 or 50 (torchvision layout: stride in the 3x3 conv, i.e. detectron2's STRIDE_IN_1X1 False).
_C.MODEL.RESNETS.DEPTH = 50
# Channels of the stem and of res2's bottleneck; stages double it. 64 is the standard ResNet.
_C.MODEL.RESNETS.WIDTH = 64
# Normalisation in the trunk: "BN", "SyncBN", "GN" (32 groups) or, for detectors, "FrozenBN".
_C.MODEL.RESNETS.NORM = "BN"

_C.MODEL.FPN = CN()
# Channels of every FPN output P2-P5.
_C.MODEL.FPN.OUT_CHANNELS = 256
# Normalisation in the lateral and output convs: "BN", "SyncBN", "GN" or "" (none).
_C.MODEL.FPN.NORM = "BN"

_C.MODEL.ROI_BOX_HEAD = CN()
# Feature maps the boxes are pooled from; every box is pooled on every one of them separately.
# "p2".."p5" for resnet_fpn, "res4" for resnet_c4.
_C.MODEL.ROI_BOX_HEAD.IN_FEATURES = ["p2", "p3", "p4", "p5"]
# RoIAlign output size (7 for FPN; 14 for C4, which res5 halves to 7).
_C.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
# RoIAlign sampling points per bin (0: adaptive, as detectron2 and mmdetection).
_C.MODEL.ROI_BOX_HEAD.POOLER_SAMPLING_RATIO = 0
# FPN head: number of 3x3 convs before the fcs (torchvision's FastRCNNConvFCHead).
_C.MODEL.ROI_BOX_HEAD.NUM_CONV = 4
_C.MODEL.ROI_BOX_HEAD.CONV_DIM = 256
# FPN head: number of fc layers (official recipe 2; only the first transfers to a detector).
_C.MODEL.ROI_BOX_HEAD.NUM_FC = 2
_C.MODEL.ROI_BOX_HEAD.FC_DIM = 1024
# Normalisation in the head convs: "BN", "SyncBN", "GN" or "".
_C.MODEL.ROI_BOX_HEAD.NORM = "BN"
# Loss weight of each IN_FEATURES level (same length; empty means 1.0 each).
_C.MODEL.ROI_BOX_HEAD.LOSS_WEIGHTS = []

_C.MODEL.MOCO = CN()
# Embedding dimension (output of the projection, L2 normalised).
_C.MODEL.MOCO.DIM = 128
# Hidden width of the MLP projection (MoCo v2: 2048 for ResNet-50); 0 makes it one linear layer.
_C.MODEL.MOCO.MLP_DIM = 2048
# Negatives kept in each queue (one queue per pooled level, one shared pointer).
_C.MODEL.MOCO.QUEUE_SIZE = 65536
# Momentum of the key encoder's moving average (every part: backbone, FPN and heads).
_C.MODEL.MOCO.MOMENTUM = 0.999
# Softmax temperature of the contrastive loss.
_C.MODEL.MOCO.TEMPERATURE = 0.2
# Ours: only queue slots that hold keys are negatives (official: random unit vectors until full,
# which collapses small networks; see MoCo.__init__).
_C.MODEL.MOCO.MASK_EMPTY_QUEUE = True
# Shuffle BN: shuffle keys across processes; in one process emulate it with a split batch norm.
_C.MODEL.MOCO.SHUFFLE_BN = True
# Groups of the split batch norm that emulates shuffle BN in one process (MoCo's single-GPU demo);
# 0 chooses them from the batch and MODEL.MOCO.SPLIT_BN_SAMPLES_PER_GROUP.
_C.MODEL.MOCO.SPLIT_BN_GROUPS = 0

# ---------------------------------------------------------------------------------------------
# Detectors (MODEL.META_ARCHITECTURE "GeneralizedRCNN"): detectron2's keys and default values,
# except where a comment says otherwise. C4 recipes use these defaults; FPN recipes set the
# anchors, RPN.IN_FEATURES, the top-k values, ROI_HEADS.NAME/IN_FEATURES and the mask head.
# ---------------------------------------------------------------------------------------------
# Mask R-CNN: add the mask branch (training data needs polygon masks).
_C.MODEL.MASK_ON = False
# Frozen trunk stages: 0 none (the MoCo / InsLoc protocol; detectron2's default is 2), 1 the stem,
# k >= 2 the stem and res2..res{k}; frozen stages get no gradient and FrozenBN.
_C.MODEL.BACKBONE.FREEZE_AT = 0

_C.MODEL.ANCHOR_GENERATOR = CN()
# Anchor sizes (sqrt of area, input pixels): one list for every RPN level or one per level.
# C4: [[32, 64, 128, 256, 512]]; FPN: [[32], [64], [128], [256], [512]].
_C.MODEL.ANCHOR_GENERATOR.SIZES = [[32, 64, 128, 256, 512]]
# Anchor aspect ratios h / w, one list for every level or one per level.
_C.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS = [[0.5, 1.0, 2.0]]
# Anchor centres at (i + OFFSET) * stride (0.0 in detectron2 and torchvision).
_C.MODEL.ANCHOR_GENERATOR.OFFSET = 0.0

_C.MODEL.RPN = CN()
# Feature maps the RPN runs on: ["res4"] for C4, ["p2", "p3", "p4", "p5", "p6"] for FPN.
_C.MODEL.RPN.IN_FEATURES = ["res4"]
# Anchors with IoU < low are background, >= high foreground (and each box's best), else ignored.
_C.MODEL.RPN.IOU_THRESHOLDS = [0.3, 0.7]
# Anchors sampled per image for the losses, and the foreground fraction at most.
_C.MODEL.RPN.BATCH_SIZE_PER_IMAGE = 256
_C.MODEL.RPN.POSITIVE_FRACTION = 0.5
# Proposals kept PER LEVEL before NMS (FPN recipes: 2000 train, 1000 test; C4 as here).
_C.MODEL.RPN.PRE_NMS_TOPK_TRAIN = 12000
_C.MODEL.RPN.PRE_NMS_TOPK_TEST = 6000
# Proposals kept PER IMAGE after NMS (FPN recipes: 1000 train, 1000 test; C4 as here).
_C.MODEL.RPN.POST_NMS_TOPK_TRAIN = 2000
_C.MODEL.RPN.POST_NMS_TOPK_TEST = 1000
# IoU threshold of the proposals' NMS (applied to each level separately).
_C.MODEL.RPN.NMS_THRESH = 0.7
# Box loss beta: 0.0 is L1, the protocol value (torchvision's RPN uses 1/9).
_C.MODEL.RPN.SMOOTH_L1_BETA = 0.0
# (wx, wy, ww, wh) weights of the anchor box encoding.
_C.MODEL.RPN.BBOX_REG_WEIGHTS = (1.0, 1.0, 1.0, 1.0)

_C.MODEL.ROI_HEADS = CN()
# "Res5ROIHeads" (C4: res5 as the box head) or "StandardROIHeads" (FPN: 4conv1fc box head).
_C.MODEL.ROI_HEADS.NAME = "Res5ROIHeads"
# Foreground classes (VOC 20, COCO 80); background is the extra last class, as in detectron2.
_C.MODEL.ROI_HEADS.NUM_CLASSES = 80
# Feature maps RoIs are pooled from: ["res4"] for C4, ["p2", "p3", "p4", "p5"] for FPN (by size).
_C.MODEL.ROI_HEADS.IN_FEATURES = ["res4"]
# RoIs sampled per image in training (ground-truth boxes are added to the proposals first) and
# the foreground fraction at most.
_C.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 512
_C.MODEL.ROI_HEADS.POSITIVE_FRACTION = 0.25
# A proposal with IoU >= this with a ground-truth box is foreground (one threshold).
_C.MODEL.ROI_HEADS.IOU_THRESHOLDS = [0.5]
# Test: minimum class score, per-class NMS IoU, detections kept per image.
_C.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.05
_C.MODEL.ROI_HEADS.NMS_THRESH_TEST = 0.5
_C.MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE = 100
# MoCo's Res5ROIHeadsExtraNorm: a norm (MODEL.RESNETS.NORM) after res5 (on in the C4 protocol).
_C.MODEL.ROI_HEADS.RES5_EXTRA_NORM = False

# The detectors' box head also reads MODEL.ROI_BOX_HEAD's pooler, conv, fc and norm keys above
# (C4: POOLER_RESOLUTION 14; FPN: 7, NUM_FC 1).
# "ROIAlignV2" (half-pixel aligned, the protocol value) or "ROIAlign" (torchvision's aligned=False).
_C.MODEL.ROI_BOX_HEAD.POOLER_TYPE = "ROIAlignV2"
# InsLoc's FastRCNNConvFCHeadExtraNorm: a norm (ROI_BOX_HEAD.NORM) after the fc (FPN protocol).
_C.MODEL.ROI_BOX_HEAD.EXTRA_NORM = False
# (wx, wy, ww, wh) weights of the proposal box encoding.
_C.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
# Box loss beta: 0.0 is L1, the protocol value (torchvision's RoI heads use 1/9).
_C.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA = 0.0

_C.MODEL.ROI_MASK_HEAD = CN()
# Mask RoIAlign output size (the predictor doubles it to 28) and sampling points per bin.
_C.MODEL.ROI_MASK_HEAD.POOLER_RESOLUTION = 14
_C.MODEL.ROI_MASK_HEAD.POOLER_SAMPLING_RATIO = 0
# "ROIAlignV2" or "ROIAlign", as ROI_BOX_HEAD.POOLER_TYPE.
_C.MODEL.ROI_MASK_HEAD.POOLER_TYPE = "ROIAlignV2"
# 3x3 convs before the deconv (0 for C4, which runs on res5's output; 4 for FPN) and their width.
_C.MODEL.ROI_MASK_HEAD.NUM_CONV = 0
_C.MODEL.ROI_MASK_HEAD.CONV_DIM = 256
# Normalisation in the mask convs: "BN", "SyncBN", "GN" or "" (protocol FPN configs: "SyncBN").
_C.MODEL.ROI_MASK_HEAD.NORM = ""

# ---------------------------------------------------------------------------------------------
# Input: copy-paste compositing, colour augmentation and anchor box augmentation
# ---------------------------------------------------------------------------------------------
_C.INPUT = CN()
# Channel order the model receives; only "RGB" (the fine-tuning protocol's INPUT.FORMAT).
_C.INPUT.FORMAT = "RGB"
# InsLoc: side of the square canvas each background is resized to (aspect not kept).
_C.INPUT.CANVAS_SIZE = 256

_C.INPUT.COPY_PASTE = CN()
# Foreground crop area as a fraction of the image (RandomResizedCrop's scale).
_C.INPUT.COPY_PASTE.CROP_SCALE = (0.2, 1.0)
# Foreground crop aspect ratio w/h, drawn log-uniformly in this range.
_C.INPUT.COPY_PASTE.CROP_RATIO = (0.5, 2.0)
# Tries before the centre-crop fallback (RandomResizedCrop's rule).
_C.INPUT.COPY_PASTE.CROP_TRIES = 10
# Target width and height of the pasted crop, integers in [low, high); the crop keeps its aspect.
_C.INPUT.COPY_PASTE.PASTE_SIZE = (128, 255)
# Where backgrounds come from: "dataset" (official: two more random images decoded per sample) or
# "batch" (ours: other images of the same batch, already decoded; a third of the decoding).
_C.INPUT.COPY_PASTE.BACKGROUNDS = "dataset"

_C.INPUT.MOCO = CN()
# MoCo v2: RandomResizedCrop output size, area range and aspect range of each view.
_C.INPUT.MOCO.CROP_SIZE = 224
_C.INPUT.MOCO.CROP_SCALE = (0.2, 1.0)
_C.INPUT.MOCO.CROP_RATIO = (0.75, 1.3333333333333333)

_C.INPUT.COLOR = CN()
# Colour jitter strengths: brightness, contrast, saturation, hue.
_C.INPUT.COLOR.JITTER = (0.4, 0.4, 0.4, 0.1)
# Probability of applying the colour jitter.
_C.INPUT.COLOR.JITTER_PROB = 0.8
# Probability of converting the view to grayscale.
_C.INPUT.COLOR.GRAYSCALE_PROB = 0.2
# Probability and sigma range of the Gaussian blur.
_C.INPUT.COLOR.BLUR_PROB = 0.5
_C.INPUT.COLOR.BLUR_SIGMA = (0.1, 2.0)
# Probability of a horizontal flip (boxes flip with the view).
_C.INPUT.COLOR.FLIP_PROB = 0.5

_C.INPUT.BOX_AUG = CN()
# Jitter boxes by drawing an overlapping RPN anchor (InsLoc's anchor box augmentation).
_C.INPUT.BOX_AUG.ENABLED = True
# Anchor grid stride in canvas pixels (the P4 map), anchor sizes and aspect ratios h/w (area kept).
_C.INPUT.BOX_AUG.ANCHOR_STRIDE = 16
_C.INPUT.BOX_AUG.ANCHOR_SIZES = (32, 64, 128, 256)
_C.INPUT.BOX_AUG.ANCHOR_RATIOS = (0.5, 0.75, 1.0, 1.5, 2.0)
# Anchor centres at (i + offset) * stride (0.0: torchvision and mmdetection).
_C.INPUT.BOX_AUG.ANCHOR_OFFSET = 0.0
# Candidates: anchors whose IoU with the pasted box is above this.
_C.INPUT.BOX_AUG.IOU_THRESH = 0.5
# NMS threshold applied to the candidates with random scores before one survivor is drawn.
_C.INPUT.BOX_AUG.NMS_THRESH = 0.7
# When no anchor qualifies, this many best-overlapping anchors are the candidates (same random-score
# NMS, then one survivor drawn). Ours: 5; the official code: 4000 (close to a random box).
_C.INPUT.BOX_AUG.FALLBACK_TOPK = 5
# IN_FEATURES levels that pool the augmented box, for the query and the key view (others pool
# the pasted box). Official FPN recipe: query P5 only.
_C.INPUT.BOX_AUG.QUERY_FEATURES = ["p5"]
_C.INPUT.BOX_AUG.KEY_FEATURES = []

# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
_C.DATASETS = CN()
# Unlabelled images: a folder (searched recursively), a COCO json, a .txt list of paths,
# or "synthetic" (insloc.data.synthetic scenes).
_C.DATASETS.PRETRAIN = "synthetic"
# Root that relative paths in a COCO json or a .txt list are resolved against ("" = the file's dir).
_C.DATASETS.IMAGE_ROOT = ""

_C.DATASETS.SYNTHETIC = CN()
# Number of synthetic scenes, their side in pixels and the seed that generates them.
_C.DATASETS.SYNTHETIC.NUM_IMAGES = 2048
_C.DATASETS.SYNTHETIC.IMAGE_SIZE = 256
_C.DATASETS.SYNTHETIC.SEED = 0

_C.DATALOADER = CN()
# Data loading processes per training process (0: load in the main process).
_C.DATALOADER.NUM_WORKERS = 4
# Batches each worker prepares ahead.
_C.DATALOADER.PREFETCH_FACTOR = 2
# Pinned host memory for faster host-to-GPU copies (CUDA only).
_C.DATALOADER.PIN_MEMORY = True

# ---------------------------------------------------------------------------------------------
# Detection data (fine-tuning; insloc.data.detection, README "Detection data")
# ---------------------------------------------------------------------------------------------
# Datasets to train on, concatenated: names (voc_2007_trainval, coco_2017_train, synthetic_train,
# ...) or COCO json paths "x.json" / "x.json:image_root".
_C.DATASETS.TRAIN = ()
# Datasets to evaluate on, each on its own (names or json paths as DATASETS.TRAIN).
_C.DATASETS.TEST = ()
# Train on VOC objects marked difficult (detectron2's VOC loader does); False drops them.
_C.DATASETS.TRAIN_ON_DIFFICULT = False
# Number of synthetic_test scenes (synthetic_train has DATASETS.SYNTHETIC.NUM_IMAGES).
_C.DATASETS.SYNTHETIC.NUM_TEST_IMAGES = 256
# Training short-edge lengths: the candidates ("choice") or (low, high), both included ("range").
_C.INPUT.MIN_SIZE_TRAIN = (800,)
# How a training short edge is drawn from MIN_SIZE_TRAIN: "choice" or "range".
_C.INPUT.MIN_SIZE_TRAIN_SAMPLING = "choice"
# Cap of the longer side of training images.
_C.INPUT.MAX_SIZE_TRAIN = 1333
# Short-edge length of test images (0: keep the original size).
_C.INPUT.MIN_SIZE_TEST = 800
# Cap of the longer side of test images.
_C.INPUT.MAX_SIZE_TEST = 1333
# Training flip: "horizontal" (probability 0.5, boxes and masks move with the image) or "none".
_C.INPUT.RANDOM_FLIP = "horizontal"
# Batch landscape and portrait training images separately (less padding per batch).
_C.DATALOADER.ASPECT_RATIO_GROUPING = True
# Drop training images left with no annotation once crowd (and difficult) ones are removed.
_C.DATALOADER.FILTER_EMPTY_ANNOTATIONS = True

# ---------------------------------------------------------------------------------------------
# Solver
# ---------------------------------------------------------------------------------------------
_C.SOLVER = CN()
# Training length in iterations; 0 derives it from SOLVER.EPOCHS (an explicit value wins).
_C.SOLVER.MAX_ITER = 0
# Images per iteration summed over all processes.
_C.SOLVER.IMS_PER_BATCH = 256
# Learning rate for REFERENCE_BATCH_SIZE images; the run uses BASE_LR * IMS_PER_BATCH / REFERENCE.
_C.SOLVER.BASE_LR = 0.03
# Batch size BASE_LR is given for (linear scaling rule); 0 uses BASE_LR as it is.
_C.SOLVER.REFERENCE_BATCH_SIZE = 256
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.NESTEROV = True
_C.SOLVER.WEIGHT_DECAY = 1e-4
# Weight decay of normalisation layers' parameters; -1 uses WEIGHT_DECAY (MoCo's pretraining),
# detection recipes set 0.0 (detectron2's default).
_C.SOLVER.WEIGHT_DECAY_NORM = -1.0
# Scale MAX_ITER, STEPS, WARMUP_ITERS, CHECKPOINT_PERIOD and TEST.EVAL_PERIOD (given for
# REFERENCE_BATCH_SIZE images, like BASE_LR) to IMS_PER_BATCH, keeping the epochs (train_net.py).
_C.SOLVER.SCALE_ITERS_WITH_BATCH = False
# "WarmupCosineLR" (to 0 at MAX_ITER), "WarmupConstantLR" or "WarmupMultiStepLR" (STEPS, GAMMA).
_C.SOLVER.LR_SCHEDULER_NAME = "WarmupCosineLR"
# WarmupMultiStepLR: iterations at which the lr is multiplied by GAMMA (increasing).
_C.SOLVER.STEPS = ()
_C.SOLVER.GAMMA = 0.1
# Linear warm-up length in iterations and starting factor (0 iterations: no warm-up).
_C.SOLVER.WARMUP_ITERS = 0
_C.SOLVER.WARMUP_FACTOR = 0.001
# Save a checkpoint every this many iterations (and always at the end); 0 derives it from
# SOLVER.CHECKPOINT_PERIOD_EPOCHS (an explicit value wins).
_C.SOLVER.CHECKPOINT_PERIOD = 5000
_C.SOLVER.AMP = CN()
# Automatic mixed precision on CUDA; DTYPE "bfloat16" or "float16" (float16 uses a grad scaler).
_C.SOLVER.AMP.ENABLED = False
_C.SOLVER.AMP.DTYPE = "bfloat16"

# ---------------------------------------------------------------------------------------------
# Evaluation during pretraining
# ---------------------------------------------------------------------------------------------
_C.TEST = CN()
# Held-out instance discrimination: each query view matched against all key views of a fixed set
# of synthetic samples (0 disables it). Run before training, every EVAL_PERIOD and at the end.
_C.TEST.INSTANCE_DISC_SAMPLES = 0
# Iterations between evaluations (0: only before and after training).
_C.TEST.EVAL_PERIOD = 0
_C.TEST.PRECISE_BN = CN()
# Fine-tuning: recompute BN statistics on NUM_ITER training batches before each evaluation
# (detectron2's PreciseBN; on in the transfer protocol's configs).
_C.TEST.PRECISE_BN.ENABLED = False
_C.TEST.PRECISE_BN.NUM_ITER = 200

# ---------------------------------------------------------------------------------------------
# Classic pretext tasks (RotNet, jigsaw, relative patch location, Exemplar-CNN) and the trunks of
# "Revisiting Self-Supervised Visual Representation Learning" (Kolesnikov et al. 2019)
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
# Exemplar-CNN network spec: "64c5-64c5-128f", "64c5-128c5-256c5-512f", "92c5-256c5-512c5-1024f".
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
# "softmax" (classification over the surrogate classes, the paper) or "triplet" (Revisiting SSL).
_C.MODEL.EXEMPLAR.LOSS = "softmax"
# Triplet variant: embedding dimension (L2 normalised) and margin of the batch-hard triplet loss.
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
# Largest shift of a tile from its cell's centre, in pixels (gaps stay >= cell - tile - 2 jitter).
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
# Transformed copies of each surrogate class per sample (the batch holds IMS_PER_BATCH x COPIES).
_C.INPUT.EXEMPLAR.COPIES = 8
# Translation (fraction of the seed side), scale range, rotation (degrees, +-).
_C.INPUT.EXEMPLAR.TRANSLATE = 0.2
_C.INPUT.EXEMPLAR.SCALE = (0.7, 1.4)
_C.INPUT.EXEMPLAR.ROTATE = 20.0
# Contrast: saturation and value raised to a power in this range (log-uniform), then hue shift +-.
_C.INPUT.EXEMPLAR.CONTRAST_POWER = (0.25, 4.0)
_C.INPUT.EXEMPLAR.HUE = 0.1

# ---------------------------------------------------------------------------------------------
# Misc
# ---------------------------------------------------------------------------------------------
# Directory for the config, metrics, checkpoints and logs.
_C.OUTPUT_DIR = "./output"
# Seed of every random draw: weights, sample order (SEED, epoch) and each sample (SEED, epoch, i).
_C.SEED = 0
# Iterations between metric writes (metrics.jsonl, TensorBoard, log line).
_C.LOG_PERIOD = 20
# Save a PNG grid of this many training composites at the start of the run (0: none).
_C.VIS_SAMPLES = 16
# Use deterministic CUDA kernels (slower; CPU runs are deterministic regardless).
_C.CUDNN_DETERMINISTIC = False

# ---------------------------------------------------------------------------------------------
# Recipes that keep their epochs when the batch changes, split BN chosen from the batch, resizing
# ---------------------------------------------------------------------------------------------
# Training length in epochs when SOLVER.MAX_ITER is 0: EPOCHS x (images // IMS_PER_BATCH) steps.
_C.SOLVER.EPOCHS = 200
# Epochs between checkpoints when SOLVER.CHECKPOINT_PERIOD is 0 (the official recipe: 5).
_C.SOLVER.CHECKPOINT_PERIOD_EPOCHS = 0
# Samples per group of the split batch norm in one process (the official recipe's 32 per GPU);
# the groups are the divisor of the batch closest to it, at least 2 (see insloc.modeling.norm).
_C.MODEL.MOCO.SPLIT_BN_SAMPLES_PER_GROUP = 32
# Interpolation of every resize of image content: "area" (ours: area averaging when shrinking,
# bilinear when enlarging) or "bilinear" (the official InsLoc code: OpenCV bilinear always).
_C.INPUT.RESIZE_INTERPOLATION = "area"

# ---------------------------------------------------------------------------------------------
# Dense features and keypoint matching (dense_match: tools/train_dense.py, tools/eval_matching.py)
# ---------------------------------------------------------------------------------------------
# 2 runs res5 at stride 1 with dilation 2 (introspection: 14 x 14 res5 for a 224 input); 1 the
# standard trunk. MODEL.BACKBONE.NAME "resnet" only.
_C.MODEL.RESNETS.RES5_DILATION = 1
# MODEL.WEIGHTS (above) for dense models: an insloc pretraining or dense checkpoint, a torchvision
# ResNet state-dict file, or "". DATASETS.TEST (above) for MODEL.META_ARCHITECTURE "Dense": one
# PF-PASCAL, PF-WILLOW or SPair-71k root or "warp:<image folder>"; () is synthetic warps of
# insloc's synthetic scenes.
# Dense training images. Introspection: any DATASETS.PRETRAIN source (warped pairs are made from
# it); AnchorNet: a folder per class, a COCO json (image-level labels; file names relative to
# DATASETS.IMAGE_ROOT), or "synthetic".
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
# Negatives cost max(0, s - MARGIN) in the likelihood's exponent (ours: the paper leaves it out).
_C.DENSE.INTROSPECTION.MARGIN = 0.5
# Smallest inverse confidence sigma (added to the softplus output, keeps 1 / sigma finite).
_C.DENSE.INTROSPECTION.MIN_SIGMA = 0.01

_C.DENSE.ANCHORNET = CN()
# Classes with anchor filters (the training set's image-level classes) and filters per class K.
_C.DENSE.ANCHORNET.NUM_CLASSES = 5
_C.DENSE.ANCHORNET.NUM_FILTERS = 10
# Side of the anchor filters (3 x 3 in the paper).
_C.DENSE.ANCHORNET.FILTER_SIZE = 3
# Loss weights: discriminability, filter orthogonality, response-map orthogonality, auto-encoder.
_C.DENSE.ANCHORNET.LOSS_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
# Weight of the global-average-pooling term on images of other classes.
_C.DENSE.ANCHORNET.AVG_POOL_WEIGHT = 1.0
# Denoising auto-encoder: code channels and channel dropout on its input (paper: 25%).
_C.DENSE.ANCHORNET.AE_DIM = 256
_C.DENSE.ANCHORNET.AE_DROPOUT = 0.25

_C.DENSE.WARP = CN()
# Random homography: each corner moves by up to this fraction of the side.
_C.DENSE.WARP.HOMOGRAPHY = 0.15
# Thin-plate spline: control points on a GRID x GRID lattice, each moved by up to TPS x the side.
_C.DENSE.WARP.TPS_GRID = 3
_C.DENSE.WARP.TPS = 0.05
# Colour jitter of the warped view (brightness, contrast, saturation, hue) and its probability.
_C.DENSE.WARP.COLOR_JITTER = (0.4, 0.4, 0.4, 0.1)
_C.DENSE.WARP.COLOR_PROB = 0.8

_C.MATCHING = CN()
# Keypoint transfer: "nn" (nearest neighbour on cosine similarity), "mutual_nn" (non-mutual
# matches count as wrong) or "soft_argmax".
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
# Synthetic-warp benchmarks: pairs, keypoints per pair, seed; the default's scenes and their side.
_C.MATCHING.WARP_PAIRS = 50
_C.MATCHING.WARP_KEYPOINTS = 20
_C.MATCHING.WARP_SEED = 0
_C.MATCHING.SYNTHETIC_IMAGES = 50
# Dense training: pairs of DATASETS.TEST matched before training, every TEST.EVAL_PERIOD
# iterations and at the end (0: no evaluation during training).
_C.TEST.MATCHING_PAIRS = 0
