import json
import os
import pickle

import pytest
import torch

from insloc.config import get_cfg, load_config
from insloc.modeling import build_model
from insloc.transfer.detectron2_names import from_detectron2, to_detectron2
from insloc.transfer.torchvision import pretraining_to_detector
from insloc.utils.file_io import atomic_save

from .conftest import ROOT, config_path
from .test_convert import _cli
from .test_detection_models import set_detector, tiny_detector_cfg

# Names and shapes of real detectron2 models (detectron2 0.6 built from source), shared by the team.
# ../shared/detectron2_reference beside the checkout (or beside a worktree's parent).
REFERENCE = os.environ.get("INSLOC_D2_REFERENCE") or next(
    (
        p
        for p in (
            os.path.join(ROOT, *up, "shared", "detectron2_reference")
            for up in ([".."], ["..", ".."])
        )
        if os.path.isdir(p)
    ),
    os.path.join(ROOT, "..", "shared", "detectron2_reference"),
)


def reference(name):
    path = os.path.join(REFERENCE, name + ".json")
    if not os.path.isfile(path):
        pytest.skip(f"{path} not available")
    with open(path) as f:
        return {k: list(v) for k, v in json.load(f)["state_dict"].items()}


def protocol_detector(arch, mask, num_classes):
    """Full-size R50 detector with the reference files' overrides (SyncBN everywhere, 4conv1fc)."""
    cfg = set_detector(get_cfg(), arch, mask, num_classes)
    cfg.MODEL.RESNETS.NORM = cfg.MODEL.FPN.NORM = "SyncBN"
    cfg.MODEL.ROI_BOX_HEAD.NORM = cfg.MODEL.ROI_MASK_HEAD.NORM = "SyncBN"
    if arch == "fpn":
        cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64], [128], [256], [512]]
    return build_model(cfg)


CASES = [
    ("faster_rcnn_R50_C4_voc", "c4", False, 20),
    ("mask_rcnn_R50_C4_coco", "c4", True, 80),
    ("mask_rcnn_R50_FPN_4conv1fc_coco", "fpn", True, 80),
]


@pytest.mark.parametrize("name,arch,mask,num_classes", CASES)
def test_names_and_shapes_equal_detectron2(name, arch, mask, num_classes):
    ref = reference(name)
    state = protocol_detector(arch, mask, num_classes).state_dict()
    converted = to_detectron2(state)
    assert {k: list(v.shape) for k, v in converted.items()} == ref
    back = from_detectron2(converted)
    assert list(back) == list(state) and all(back[k] is state[k] for k in state)


@pytest.mark.parametrize("name,arch", [(CASES[1][0], "c4"), (CASES[2][0], "fpn")])
def test_pretraining_export_is_the_matching_part_of_detectron2(name, arch):
    ref = reference(name)
    recipe = f"pretrain/insloc_R50_{arch.upper()}_200ep.yaml"
    opts = [
        "MODEL.RESNETS.NORM",
        "SyncBN",
        "MODEL.MOCO.QUEUE_SIZE",
        256,
        "SOLVER.IMS_PER_BATCH",
        256,
    ]
    if arch == "fpn":
        opts += ["MODEL.FPN.NORM", "SyncBN", "MODEL.ROI_BOX_HEAD.NORM", "SyncBN"]
    pretrained = build_model(load_config(config_path(recipe), opts)).state_dict()
    exported = to_detectron2(pretraining_to_detector(pretrained, arch))
    # C4: trunk + res5; FPN: backbone, FPN and the box head's convs and fc1 (the second fc of the
    # pretraining head has no detector twin).
    part = ("backbone.", "roi_heads.res5." if arch == "c4" else "roi_heads.box_head.")
    assert {k: list(v.shape) for k, v in exported.items()} == {
        k: v for k, v in ref.items() if k.startswith(part)
    }


def test_extra_norms_keep_their_official_names():
    c4 = to_detectron2(build_model(tiny_detector_cfg("c4", False)).state_dict())
    fpn = to_detectron2(build_model(tiny_detector_cfg("fpn", False)).state_dict())
    assert "roi_heads.res5.norm.running_var" in c4  # MoCo's Res5ROIHeadsExtraNorm
    assert "roi_heads.box_head.fc_extra_norm.weight" in fpn  # InsLoc's FastRCNNConvFCHeadExtraNorm
    assert (
        from_detectron2(fpn).keys()
        == build_model(tiny_detector_cfg("fpn", False)).state_dict().keys()
    )
    with pytest.raises(ValueError, match="'head.something'"):
        to_detectron2({"head.something": torch.zeros(1)})


def test_cli_writes_detectron2_pickles(tmp_path, capsys):
    main = _cli()
    torch.manual_seed(0)
    detector = build_model(tiny_detector_cfg("fpn", True))
    src = str(tmp_path / "model_final.pth")
    atomic_save({"model": detector.state_dict(), "iteration": 3}, src)
    dst = str(tmp_path / "fpn.pkl")
    main([src, dst, "--to", "detectron2"])
    with open(dst, "rb") as f:
        written = pickle.load(f)
    assert written["__author__"] == "insloc" and written["matching_heuristics"] is True
    expected = to_detectron2(detector.state_dict())
    assert written["model"].keys() == expected.keys()
    assert all((written["model"][k] == v.numpy()).all() for k, v in expected.items())
    assert "detector" in capsys.readouterr().out

    pre_cfg = load_config(config_path("quick/insloc_tiny_C4.yaml"))
    pre = str(tmp_path / "pretrain.pth")
    atomic_save({"model": build_model(pre_cfg).state_dict()}, pre)
    main([pre, str(tmp_path / "c4.pkl"), "--to", "detectron2"])
    with open(tmp_path / "c4.pkl", "rb") as f:
        names = pickle.load(f)["model"].keys()
    assert "backbone.stem.conv1.weight" in names and "roi_heads.res5.0.conv1.weight" in names
    assert all(k.startswith(("backbone.res", "backbone.stem.", "roi_heads.res5.")) for k in names)

    assert main([src, dst, "--to", "detectron2"]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err
