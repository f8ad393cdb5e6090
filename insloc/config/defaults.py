"""Every config key of insloc, with its default and a one-line comment.

Recipes in ``configs/`` set ``_BASE_`` and only their differences; the command line overrides with
``KEY VALUE`` pairs. Defaults follow the official InsLoc R50-FPN ImageNet recipe (PROTOCOLS.md).
"""

from fvcore.common.config import CfgNode as CN

from .defaults_dense import add_dense_config
from .defaults_detection import add_detection_config
from .defaults_pretext import add_pretext_config

_C = CN()
_C.VERSION = 1

# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------
_C.MODEL = CN()
# A method registered in insloc.config.registry: "InsLoc" or "MoCo" (pretraining),
# "GeneralizedRCNN" (Faster / Mask R-CNN fine-tuning), a classic pretext task: "RotNet",
# "Jigsaw", "RelativeLoc", "Exemplar" (section below), or "Dense" (dense_match).
_C.MODEL.META_ARCHITECTURE = "InsLoc"
# "auto" (CUDA when available), "cpu" or "cuda"; under torchrun each process takes cuda:LOCAL_RANK.
_C.MODEL.DEVICE = "auto"
# Normalisation of RGB input in 0-255 (shared with fine-tuning: INPUT.FORMAT RGB).
_C.MODEL.PIXEL_MEAN = [123.675, 116.28, 103.53]
_C.MODEL.PIXEL_STD = [58.395, 57.12, 57.375]
# Use the channels_last memory format on CUDA (faster convolutions with AMP).
_C.MODEL.CHANNELS_LAST = True

# Initial weights of a fine-tuning run: an insloc pretraining or fine-tuning checkpoint, a
# torchvision-format state dict file, a detectron2 .pkl, or "" (random init). See
# docs/transfer.md (insloc.transfer.weight_file reads every kind).
_C.MODEL.WEIGHTS = ""

_C.MODEL.BACKBONE = CN()
# A backbone registered in insloc.config.registry: "resnet_fpn", "resnet_c4" or "resnet"; the
# classic pretext tasks take any "trunk": also "resnet_v2", "revnet", "vgg19_bn", "nin",
# "exemplar_cnn".
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
# CIFAR-10's cifar-10-batches-py folder (data_batch_1..5), STL-10's stl10_binary folder
# (unlabeled_X.bin + train_X.bin) or one *_X.bin file, or "synthetic" (insloc.data.synthetic).
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
_C.SOLVER.CLIP_GRADIENTS = CN()
# Clip gradients before each step (detectron2's keys): CLIP_TYPE "norm" scales all gradients
# together so their NORM_TYPE-norm is at most CLIP_VALUE; "value" clamps each element to
# [-CLIP_VALUE, CLIP_VALUE].
_C.SOLVER.CLIP_GRADIENTS.ENABLED = False
_C.SOLVER.CLIP_GRADIENTS.CLIP_TYPE = "norm"
_C.SOLVER.CLIP_GRADIENTS.CLIP_VALUE = 1.0
_C.SOLVER.CLIP_GRADIENTS.NORM_TYPE = 2.0
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

# The stages beyond pretraining add their keys to the same tree (one config system).
add_detection_config(_C)
add_pretext_config(_C)
add_dense_config(_C)
