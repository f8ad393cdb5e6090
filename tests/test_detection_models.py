import numpy as np
import pytest
import torch

from insloc.config import get_cfg, load_config
from insloc.config.config import ConfigError, validate_config
from insloc.modeling import GeneralizedRCNN, build_model
from insloc.transfer.torchvision import pretraining_to_detector

from .conftest import config_path


def set_detector(cfg, arch: str, mask: bool, num_classes: int = 3):
    """The keys that turn a config into the C4 or FPN protocol detector (detectron2's values)."""
    cfg.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
    cfg.MODEL.MASK_ON = mask
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = num_classes
    if arch == "fpn":
        cfg.MODEL.BACKBONE.NAME = "resnet_fpn"
        cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
        cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
        cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
        cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 7
        cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 1
        cfg.MODEL.ROI_MASK_HEAD.NUM_CONV = 4
        cfg.MODEL.ROI_MASK_HEAD.NORM = cfg.MODEL.ROI_BOX_HEAD.NORM
    else:
        cfg.MODEL.BACKBONE.NAME = "resnet_c4"
        cfg.MODEL.ROI_HEADS.IN_FEATURES = ["res4"]
        cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
    return cfg


def tiny_detector_cfg(arch: str, mask: bool, extra_norm: bool = True):
    """ResNet-18 width 8, 16-channel heads, few proposals and RoIs: seconds on a CPU."""
    cfg = set_detector(get_cfg(), arch, mask)
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.WIDTH = 8
    cfg.MODEL.FPN.OUT_CHANNELS = 16
    cfg.MODEL.ROI_BOX_HEAD.CONV_DIM = 16
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 32
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 16
    sizes = [[16], [32], [64], [128], [256]] if arch == "fpn" else [[16, 32, 64]]
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = sizes
    cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN = cfg.MODEL.RPN.PRE_NMS_TOPK_TEST = 200
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 32
    cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE = 32
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.0
    cfg.MODEL.ROI_HEADS.DETECTIONS_PER_IMAGE = 10
    cfg.MODEL.ROI_BOX_HEAD.EXTRA_NORM = extra_norm and arch == "fpn"
    cfg.MODEL.ROI_HEADS.RES5_EXTRA_NORM = extra_norm and arch == "c4"
    validate_config(cfg)
    return cfg


def box_polygon(box):
    x1, y1, x2, y2 = box
    return [np.array([x1, y1, x2, y1, x2, y2, x1, y2], dtype=np.float32)]


def make_sample(seed: int, size=(64, 96), boxes=((8, 10, 40, 50), (30, 20, 90, 60)), scale=1):
    g = torch.Generator().manual_seed(seed)
    h, w = size
    image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)
    for x1, y1, x2, y2 in boxes:  # objects brighter than the background, so they can be learnt
        image[:, y1:y2, x1:x2] = image[:, y1:y2, x1:x2] // 4 + 180
    boxes_t = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    return {
        "image": image,
        "height": h * scale,
        "width": w * scale,
        "image_id": seed,
        "file_name": f"synthetic:{seed}",
        "instances": {
            "boxes": boxes_t,
            "classes": torch.arange(len(boxes_t), dtype=torch.int64) % 3,
            "masks": [box_polygon(b) for b in boxes],
        },
    }


VARIANTS = [("c4", False), ("c4", True), ("fpn", False), ("fpn", True)]


def _loss(model, batch, seed=0):
    torch.manual_seed(seed)  # the same anchor and RoI samples every call
    return model(batch)


@pytest.mark.parametrize("arch,mask", VARIANTS)
def test_training_lowers_the_loss_and_reaches_every_parameter(arch, mask):
    torch.manual_seed(0)
    model = build_model(tiny_detector_cfg(arch, mask)).train()
    assert isinstance(model, GeneralizedRCNN)
    batch = [make_sample(0), make_sample(1, size=(56, 80), boxes=((4, 4, 30, 40),))]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.02, momentum=0.9)
    losses = _loss(model, batch)
    expected = {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"}
    assert set(losses) == expected | ({"loss_mask"} if mask else set())
    first = sum(losses.values())
    first.backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    opt.step()
    for _ in range(2):
        opt.zero_grad()
        sum(_loss(model, batch).values()).backward()
        opt.step()
    with torch.no_grad():
        assert sum(_loss(model, batch).values()) < first.detach()


@pytest.mark.parametrize("arch", ["c4", "fpn"])
def test_image_without_boxes_gives_zero_box_and_mask_losses(arch):
    torch.manual_seed(0)
    model = build_model(tiny_detector_cfg(arch, True)).train()
    losses = model([make_sample(0, boxes=())])
    assert losses["loss_rpn_loc"].item() == 0.0
    assert losses["loss_box_reg"].item() == 0.0 and losses["loss_mask"].item() == 0.0
    assert torch.isfinite(losses["loss_cls"]) and losses["loss_cls"] > 0
    assert torch.isfinite(losses["loss_rpn_cls"])
    sum(losses.values()).backward()  # the zero losses still reach the heads


@pytest.mark.parametrize("arch", ["c4", "fpn"])
def test_eval_outputs_are_in_original_pixels(arch):
    torch.manual_seed(0)
    model = build_model(tiny_detector_cfg(arch, True)).eval()
    same = [make_sample(0), make_sample(1, size=(56, 80))]
    double = [make_sample(0, scale=2), make_sample(1, size=(56, 80), scale=2)]
    with torch.no_grad():
        out, out2 = model(same), model(double)
    for o, o2, s in zip(out, out2, double):
        n = len(o2["boxes"])
        assert 0 < n <= 10
        assert o2["boxes"].dtype == torch.float32 and o2["classes"].dtype == torch.int64
        assert o2["scores"].shape == (n,) and (o2["classes"] < 3).all()
        assert o2["masks"].dtype == torch.bool and o2["masks"].shape == (n, s["height"], s["width"])
        assert (o2["boxes"][:, 2] <= s["width"]).all() and (o2["boxes"][:, 3] <= s["height"]).all()
        # Same detections; boxes scaled by the original / resized ratio.
        torch.testing.assert_close(o2["scores"], o["scores"])
        torch.testing.assert_close(o2["boxes"], o["boxes"] * 2)


def test_c4_without_padding_fpn_padded_to_32():
    c4 = build_model(tiny_detector_cfg("c4", False))
    fpn = build_model(tiny_detector_cfg("fpn", False))
    samples = [make_sample(0, size=(50, 70)), make_sample(1, size=(40, 90))]
    images, sizes = c4.preprocess(samples)
    assert images.shape == (2, 3, 50, 90) and sizes == [(50, 70), (40, 90)]
    assert (images[1, :, 40:] == 0).all()  # zeros after normalisation, as detectron2 pads
    assert fpn.preprocess(samples)[0].shape == (2, 3, 64, 96)


PRETRAIN_RECIPES = [
    ("quick/insloc_tiny_FPN.yaml", "fpn"),
    ("quick/insloc_tiny_C4.yaml", "c4"),
    ("quick/moco_v2_tiny.yaml", "c4"),
    ("quick/moco_v2_tiny.yaml", "fpn"),
]


@pytest.mark.parametrize("recipe,arch", PRETRAIN_RECIPES)
def test_pretraining_checkpoint_loads_with_no_missing_trunk_key(recipe, arch):
    pre_cfg = load_config(config_path(recipe))
    torch.manual_seed(0)
    pretrained = build_model(pre_cfg).state_dict()
    cfg = pre_cfg.clone()
    cfg.defrost()
    set_detector(cfg, arch, mask=True)
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 1
    validate_config(cfg)
    torch.manual_seed(1)
    detector = build_model(cfg)
    weights = pretraining_to_detector(pretrained, arch)
    missing, unexpected = detector.load_state_dict(weights, strict=False)
    assert unexpected == []
    trunk = "backbone.body." if arch == "fpn" else ("backbone.", "roi_heads.res5.")
    assert [k for k in missing if k.startswith(trunk)] == []
    if "FPN" in recipe:  # the FPN and the box head's convs and first fc transfer too
        assert [k for k in missing if k.startswith("backbone.")] == []
        head = {k for k in weights if k.startswith("roi_heads.box_head.")}
        assert {k.split(".")[2] for k in head} == {"0", "1", "2", "3", "5"}
    state = detector.state_dict()
    assert all(torch.equal(state[k], v) for k, v in weights.items())


def test_detector_config_cross_checks():
    cfg = tiny_detector_cfg("c4", False)
    cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
    with pytest.raises(ConfigError, match="MODEL.ROI_HEADS.NAME"):
        validate_config(cfg)
    cfg = tiny_detector_cfg("fpn", False)
    cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[16], [32]]
    with pytest.raises(ConfigError, match="SIZES"):
        validate_config(cfg)
    cfg = tiny_detector_cfg("fpn", False)
    cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p6"]
    with pytest.raises(ConfigError, match="IN_FEATURES"):
        validate_config(cfg)
    cfg = get_cfg()
    cfg.MODEL.RESNETS.NORM = "FrozenBN"
    with pytest.raises(ConfigError, match="FrozenBN"):
        validate_config(cfg)
