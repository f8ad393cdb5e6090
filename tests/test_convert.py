import os

import pytest
import torch
import torchvision
from torchvision.models.detection import fasterrcnn_resnet50_fpn_v2, maskrcnn_resnet50_fpn_v2

from insloc.config import get_cfg
from insloc.modeling import build_model
from insloc.transfer.torchvision import convert_to_torchvision, detect_arch
from insloc.utils.file_io import atomic_save

from .conftest import load_script
from .test_moco import set_arch, tiny_cfg


def full_cfg(arch):
    cfg = get_cfg()  # R50, 256-channel BN FPN, 4conv1fc head + second fc, 128-d
    cfg.MODEL.MOCO.QUEUE_SIZE = 256
    return set_arch(cfg, arch)


def _assert_loaded(model, converted):
    state = model.state_dict()
    for k, v in converted.items():
        assert torch.equal(state[k], v), k


def test_fpn_loads_into_torchvision_detectors():
    torch.manual_seed(0)
    sd = build_model(full_cfg("fpn")).state_dict()
    assert detect_arch(sd) == "fpn"
    converted = convert_to_torchvision(sd, "fpn")
    head = {k.split(".")[2] for k in converted if k.startswith("roi_heads.box_head.")}
    assert head == {"0", "1", "2", "3", "5"}  # the second fc (7) has no detector twin
    for build in (fasterrcnn_resnet50_fpn_v2, maskrcnn_resnet50_fpn_v2):
        detector = build(weights=None, weights_backbone=None)
        missing, unexpected = detector.load_state_dict(converted, strict=False)
        assert unexpected == []
        assert [k for k in missing if k.startswith(("backbone.", "roi_heads.box_head."))] == []
        _assert_loaded(detector, converted)


@pytest.mark.parametrize("arch", ["c4", "resnet"])
def test_c4_and_moco_load_into_resnet50(arch):
    torch.manual_seed(0)
    sd = build_model(full_cfg(arch)).state_dict()
    assert detect_arch(sd) == arch
    converted = convert_to_torchvision(sd, arch)
    resnet = torchvision.models.resnet50()
    missing, unexpected = resnet.load_state_dict(converted, strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []
    _assert_loaded(resnet, converted)


def _cli():
    return load_script("tools/convert_checkpoint.py").main


def test_cli_converts_and_refuses_to_overwrite(tmp_path, capsys):
    main = _cli()
    torch.manual_seed(0)
    model = build_model(tiny_cfg("fpn"))
    src, dst = str(tmp_path / "model_final.pth"), str(tmp_path / "tv.pth")
    atomic_save({"model": model.state_dict(), "iteration": 1}, src)
    main([src, dst, "--to", "torchvision"])
    written = torch.load(dst, weights_only=True)
    assert written.keys() == convert_to_torchvision(model.state_dict(), "fpn").keys()
    assert "fpn" in capsys.readouterr().out

    assert main([src, dst, "--to", "torchvision"]) == 2
    assert dst in capsys.readouterr().err

    other = str(tmp_path / "other.pth")
    atomic_save({"state_dict": {"w": torch.zeros(1)}}, other)
    assert main([other, str(tmp_path / "x.pth"), "--to", "torchvision"]) == 2
    err = capsys.readouterr().err
    assert "not an insloc pretraining or fine-tuning (detection) checkpoint" in err
    assert not os.path.exists(tmp_path / "x.pth")


@pytest.mark.parametrize("arch", ["c4", "fpn"])
def test_fine_tuned_detector_trunk_loads_into_resnet(arch):
    """A fine-tuning checkpoint's trunk (a trunk trained with labels) exports to torchvision's
    ResNet names: every trunk tensor, nothing else (not C4's extra norm after res5, not the FPN)."""
    from .test_detection_models import tiny_detector_cfg

    torch.manual_seed(0)
    detector = build_model(tiny_detector_cfg(arch, mask=True))
    sd = detector.state_dict()
    assert detect_arch(sd) == "detector"
    converted = convert_to_torchvision(sd, "detector")
    trunk = detector.backbone.body if arch == "fpn" else detector.backbone
    expected = set(trunk.state_dict())
    if arch == "c4":
        res5 = detector.roi_heads.res5.state_dict()
        expected |= {"layer4." + k for k in res5 if k[0].isdigit()}
    assert set(converted) == expected
    for k, v in converted.items():
        source = ("backbone.body." if arch == "fpn" else "backbone.") + k
        if arch == "c4" and k.startswith("layer4."):
            source = "roi_heads.res5." + k[len("layer4.") :]
        assert torch.equal(sd[source], v), k


def test_torchvision_detector_trunk_loads_into_resnet50():
    detector = fasterrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None)
    sd = detector.state_dict()
    assert detect_arch(sd) == "detector"
    resnet = torchvision.models.resnet50()
    missing, unexpected = resnet.load_state_dict(convert_to_torchvision(sd, "detector"), False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []
