"""Config keys of detection fine-tuning: the detectors and their data (tools/train_net.py)."""

from fvcore.common.config import CfgNode as CN


def add_detection_config(_C: CN) -> None:
    """Add the keys below to ``_C``, the defaults of insloc.config.defaults."""
    # ---------------------------------------------------------------------------------------------
    # Detectors (MODEL.META_ARCHITECTURE "GeneralizedRCNN"): detectron2's keys and default values,
    # except where a comment says otherwise. C4 recipes use these defaults; FPN recipes set the
    # anchors, RPN.IN_FEATURES, the top-k values, ROI_HEADS.NAME/IN_FEATURES and the mask head.
    # ---------------------------------------------------------------------------------------------
    # Mask R-CNN: add the mask branch (training data needs polygon masks).
    _C.MODEL.MASK_ON = False
    # Frozen trunk stages: 0 none (the MoCo / InsLoc protocol; detectron2's default is 2), 1 the
    # stem, k >= 2 the stem and res2..res{k}; frozen stages get no gradient and FrozenBN.
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
    # Feature maps RoIs are pooled from: ["res4"] for C4, ["p2", "p3", "p4", "p5"] for FPN (by
    # size).
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
    # (C4: POOLER_RESOLUTION 14; FPN: 7, NUM_FC 1). "ROIAlignV2" (half-pixel aligned, the protocol
    # value) or "ROIAlign" (torchvision's aligned=False).
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
    # 3x3 convs before the deconv (0 for C4, which runs on res5's output; 4 for FPN) and their
    # width.
    _C.MODEL.ROI_MASK_HEAD.NUM_CONV = 0
    _C.MODEL.ROI_MASK_HEAD.CONV_DIM = 256
    # Normalisation in the mask convs: "BN", "SyncBN", "GN" or "" (protocol FPN configs: "SyncBN").
    _C.MODEL.ROI_MASK_HEAD.NORM = ""

    # ---------------------------------------------------------------------------------------------
    # Detection data (fine-tuning; insloc.data.detection, docs/data.md "Detection data")
    # ---------------------------------------------------------------------------------------------
    # Datasets to train on, concatenated: names (voc_2007_trainval, coco_2017_train,
    # synthetic_train, ...) or COCO json paths "x.json" / "x.json:image_root".
    _C.DATASETS.TRAIN = ()
    # Datasets to evaluate on, each on its own (names or json paths as DATASETS.TRAIN).
    _C.DATASETS.TEST = ()
    # Train on VOC objects marked difficult (detectron2's VOC loader does); False drops them.
    _C.DATASETS.TRAIN_ON_DIFFICULT = False
    # Number of synthetic_test scenes (synthetic_train has DATASETS.SYNTHETIC.NUM_IMAGES).
    _C.DATASETS.SYNTHETIC.NUM_TEST_IMAGES = 256
    # Training short-edge lengths: the candidates ("choice") or (low, high), both included
    # ("range").
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
