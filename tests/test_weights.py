import logging
import os
import pickle

import pytest
import torch
import torchvision

from insloc.config import load_config
from insloc.modeling import build_model
from insloc.transfer.detectron2_names import to_detectron2
from insloc.transfer.pickle_io import write_detectron2_pkl
from insloc.transfer.torchvision import convert_to_torchvision
from insloc.transfer.weights import load_detection_weights
from insloc.utils.file_io import atomic_save

from .conftest import config_path
from .test_convert import _cli

convert = _cli()

PRETRAIN = {"fpn": "quick/insloc_tiny_FPN.yaml", "c4": "quick/insloc_tiny_C4.yaml"}
CLASS_DEPENDENT = {
    "roi_heads.box_predictor.cls_score.weight",
    "roi_heads.box_predictor.cls_score.bias",
    "roi_heads.box_predictor.bbox_pred.weight",
    "roi_heads.box_predictor.bbox_pred.bias",
    "roi_heads.mask_predictor.mask_fcn_logits.weight",
    "roi_heads.mask_predictor.mask_fcn_logits.bias",
}


def detector_cfg(arch, num_classes=3, **overrides):
    """A Mask R-CNN with the tiny pretraining recipe's trunk (ResNet-18, width 16) and heads."""
    cfg = load_config(config_path(PRETRAIN[arch]))
    cfg.defrost()
    m = cfg.MODEL
    m.META_ARCHITECTURE = "GeneralizedRCNN"
    m.MASK_ON = True
    m.ROI_HEADS.NUM_CLASSES = num_classes
    m.ROI_MASK_HEAD.CONV_DIM = 16
    if arch == "fpn":
        m.ANCHOR_GENERATOR.SIZES = [[32], [64], [128], [256], [512]]
        m.RPN.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
        m.ROI_HEADS.NAME = "StandardROIHeads"
        m.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
        m.ROI_BOX_HEAD.NUM_FC, m.ROI_BOX_HEAD.POOLER_RESOLUTION = 1, 7
        m.ROI_MASK_HEAD.NUM_CONV = 2
    else:
        m.ROI_HEADS.NAME = "Res5ROIHeads"
        m.ROI_HEADS.IN_FEATURES = ["res4"]
    for key, value in overrides.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return cfg


def detector(arch, seed, **kw):
    torch.manual_seed(seed)
    return build_model(detector_cfg(arch, **kw)).eval()


def pretraining_checkpoint(arch, path):
    torch.manual_seed(0)
    model = build_model(load_config(config_path(PRETRAIN[arch])))
    atomic_save({"model": model.state_dict(), "iteration": 4, "meta_arch": "InsLoc"}, path)
    return model.state_dict()


def _equal_where_loaded(model, expected):
    state = model.state_dict()
    for k, v in expected.items():
        assert torch.equal(state[k], v), k


@pytest.mark.parametrize("arch", ["c4", "fpn"])
def test_pkl_round_trip_loads_every_tensor(tmp_path, arch, caplog):
    source = detector(arch, seed=0)
    checkpoint, path = str(tmp_path / "model_final.pth"), str(tmp_path / "model.pkl")
    atomic_save({"model": source.state_dict(), "iteration": 10}, checkpoint)
    convert([checkpoint, path, "--to", "detectron2"])  # the converter's writer
    target = detector(arch, seed=1)
    with caplog.at_level(logging.INFO):
        report = load_detection_weights(target, path, logging.getLogger("test"))
    assert report.kind == "detectron2"
    assert report.missing == [] and report.unexpected == [] and report.skipped == {}
    _equal_where_loaded(target, source.state_dict())
    table = caplog.text
    assert "model.pkl (detectron2)" in table and "predictors" in table and "rpn" in table


def test_detectron2_pth_is_renamed(tmp_path):
    source = detector("fpn", seed=0)
    path = str(tmp_path / "model_final.pth")  # what detectron2's own checkpointer writes
    atomic_save({"model": to_detectron2(source.state_dict()), "iteration": 9}, path)
    target = detector("fpn", seed=1)
    report = load_detection_weights(target, path)
    assert report.kind == "detectron2" and report.missing == [] and report.unexpected == []
    _equal_where_loaded(target, source.state_dict())


def test_moco_style_bare_names_land_in_trunk_and_res5(tmp_path):
    # MoCo's converter: stem.* / res2.* .. res5.* without "backbone.", matched by detectron2's
    # heuristics; here they are placed by architecture.
    source = detector("c4", seed=0).state_dict()
    d2 = to_detectron2(
        {k: v for k, v in source.items() if k.startswith(("backbone.", "roi_heads.res5."))}
    )
    bare = {k.replace("backbone.", "").replace("roi_heads.", ""): v for k, v in d2.items()}
    assert any(k.startswith("stem.") for k in bare) and any(k.startswith("res5.") for k in bare)
    path = str(tmp_path / "moco.pkl")
    write_detectron2_pkl(bare, path)
    target = detector("c4", seed=1)
    report = load_detection_weights(target, path)
    assert len(report.loaded) == len(bare) and report.unexpected == []
    assert not [k for k in report.missing if k.startswith(("backbone.", "roi_heads.res5."))]


@pytest.mark.parametrize("arch", ["c4", "fpn"])
@pytest.mark.parametrize("exported", [False, True])
def test_pretraining_checkpoint_loads_the_whole_trunk(tmp_path, arch, exported):
    path = str(tmp_path / "model_final.pth")
    pretrained = pretraining_checkpoint(arch, path)
    if exported:  # the same weights through tools/convert_checkpoint.py --to detectron2
        convert([path, str(tmp_path / "pre.pkl"), "--to", "detectron2"])
        path = str(tmp_path / "pre.pkl")
    model = detector(arch, seed=1)
    report = load_detection_weights(model, path)
    kind = "detectron2" if exported else f"insloc pretraining ({arch})"
    assert report.kind == kind and report.unexpected == []
    transfers = (
        ("backbone.", "roi_heads.res5.") if arch == "c4" else ("backbone.", "roi_heads.box_head.")
    )
    missing = [k for k in report.missing if k.startswith(transfers)]
    assert missing == []  # every trunk (and C4 res5 / FPN box head) tensor came from the file
    q = "encoder_q.backbone.body." if arch == "fpn" else "encoder_q.backbone."
    trunk = "backbone.body." if arch == "fpn" else "backbone."
    _equal_where_loaded(
        model, {trunk + k[len(q) :]: v for k, v in pretrained.items() if k.startswith(q)}
    )


def test_torchvision_formats(tmp_path):
    # the converter's --to torchvision output of an FPN pretraining
    path = str(tmp_path / "tv.pth")
    pretrained = pretraining_checkpoint("fpn", str(tmp_path / "pre.pth"))
    converted = convert_to_torchvision(pretrained, "fpn")
    atomic_save(converted, path)
    model = detector("fpn", seed=1)
    report = load_detection_weights(model, path)
    assert report.kind == "torchvision" and sorted(report.loaded) == sorted(converted)
    _equal_where_loaded(model, converted)

    # torchvision's own ResNet file: trunk names without prefix, layer4 = res5, fc ignored
    resnet = torchvision.models.resnet18()
    path = str(tmp_path / "resnet18.pth")
    atomic_save(resnet.state_dict(), path)
    for arch in ("c4", "fpn"):
        model = detector(arch, seed=1, **{"MODEL.RESNETS.WIDTH": 64})
        report = load_detection_weights(model, path)
        assert report.kind == "torchvision (ResNet)"
        assert len(report.loaded) == len(resnet.state_dict()) - 2  # all but fc.weight, fc.bias
        res5 = "roi_heads.res5." if arch == "c4" else "backbone.body.layer4."
        assert torch.equal(
            model.state_dict()[res5 + "1.conv2.weight"], resnet.layer4[1].conv2.weight
        )


def test_fine_tuning_checkpoint_and_random_init(tmp_path):
    source = detector("fpn", seed=0)
    path = str(tmp_path / "model_0000100.pth")
    atomic_save({"model": source.state_dict(), "iteration": 100}, path)
    target = detector("fpn", seed=1)
    report = load_detection_weights(target, path)
    assert report.kind == "insloc fine-tuning" and report.missing == [] and report.unexpected == []
    _equal_where_loaded(target, source.state_dict())

    before = {k: v.clone() for k, v in target.state_dict().items()}
    report = load_detection_weights(target, "")
    assert report.kind == "random" and report.loaded == []
    _equal_where_loaded(target, before)


def test_another_class_count_keeps_all_but_the_predictors(tmp_path, caplog):
    source = detector("c4", seed=0, num_classes=5)
    path = str(tmp_path / "coco.pth")
    atomic_save({"model": source.state_dict(), "iteration": 1}, path)
    target = detector("c4", seed=1, num_classes=3)
    with caplog.at_level(logging.INFO):
        report = load_detection_weights(target, path, logging.getLogger("test"))
    assert set(report.skipped) == CLASS_DEPENDENT and report.missing == sorted(
        CLASS_DEPENDENT, key=list(target.state_dict()).index
    )
    _equal_where_loaded(
        target, {k: v for k, v in source.state_dict().items() if k not in CLASS_DEPENDENT}
    )
    assert "another number of classes" in caplog.text


def test_files_that_do_not_fit_are_errors_naming_them(tmp_path):
    model = detector("fpn", seed=0)
    unrelated = str(tmp_path / "unrelated.pth")
    atomic_save({"encoder.weight": torch.zeros(3)}, unrelated)
    with pytest.raises(ValueError, match="unrelated.pth .*matches no parameter"):
        load_detection_weights(model, unrelated)

    wider = str(tmp_path / "wider.pth")  # same names, another width: not silently skipped
    atomic_save(
        {"model": detector("fpn", seed=0, **{"MODEL.RESNETS.WIDTH": 32}).state_dict()}, wider
    )
    with pytest.raises(ValueError, match="wider.pth: backbone.body.conv1.weight has shape"):
        load_detection_weights(model, wider)

    caffe2 = str(tmp_path / "R-50.pkl")  # detectron2's model zoo ImageNet file: Caffe2 names
    write_detectron2_pkl({"conv1_w": torch.zeros(64, 3, 7, 7)}, caffe2)
    with pytest.raises(ValueError, match="R-50.pkl: .*'conv1_w'"):
        load_detection_weights(model, caffe2)

    with pytest.raises(FileNotFoundError, match="absent.pth"):
        load_detection_weights(model, str(tmp_path / "absent.pth"))

    marker = tmp_path / "ran"
    evil = str(tmp_path / "evil.pkl")
    with open(evil, "wb") as f:
        pickle.dump({"model": {"w": _RunsACommand(marker)}}, f)
    with pytest.raises(ValueError, match="evil.pkl: refusing to load posix.system"):
        load_detection_weights(model, evil)
    assert not marker.exists()


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
