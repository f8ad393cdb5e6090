"""The same weight file is recognised the same way by every tool that reads weights: one file of
each kind insloc reads (insloc.transfer.weight_file), given to tools/train_net.py (MODEL.WEIGHTS),
tools/linear_eval.py (--checkpoint) and tools/eval_matching.py (MODEL.WEIGHTS), through each
tool's entry point. A tool that takes the file says ``weights from <path> (<kind>)``; one that does
not says ``<path> is <what it is>, not ...``, with the reader's words for the kind."""

import os

import pytest
import torch

from insloc.config import load_config
from insloc.modeling import build_model
from insloc.modeling.backbone import build_resnet
from insloc.transfer.detectron2_names import to_detectron2
from insloc.transfer.pickle_io import write_detectron2_pkl
from insloc.transfer.torchvision import pretraining_to_detector
from insloc.transfer.weight_file import WeightFile, read_weight_file
from insloc.utils.file_io import atomic_save

from .conftest import ROOT
from .test_linear_eval import _write_folder_tree
from .test_output_dir import error_lines, run_main

DETECTOR = "configs/quick/det_tiny_FPN.yaml"  # ResNet-18 at width 16, as every file below
DENSE_EVAL = "configs/quick/dense_eval_tiny.yaml"
R18 = ["MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.WIDTH", "16"]

# kind -> the tools that take it (the others refuse it, naming it)
TAKEN_BY = {
    "insloc pretraining (fpn)": {"train_net", "linear_eval", "eval_matching"},
    "insloc pretraining (resnet)": {"train_net", "linear_eval", "eval_matching"},
    "insloc pretext (RotNet)": {"linear_eval"},
    "insloc fine-tuning": {"train_net"},
    "insloc dense": {"eval_matching"},
    "torchvision (ResNet)": {"train_net", "linear_eval", "eval_matching"},
    "MoCo (official)": {"train_net", "linear_eval", "eval_matching"},
    "InsLoc (official)": {"train_net", "linear_eval", "eval_matching"},
    "detectron2": {"train_net"},
    "torchvision": {"train_net"},
}


def _insloc_checkpoint(path, config, *opts):
    cfg = load_config(os.path.join(ROOT, config), list(opts))
    torch.manual_seed(0)
    if cfg.MODEL.META_ARCHITECTURE == "Dense":
        from dense_match.model import DenseModel

        model = DenseModel.from_config(cfg)
    else:
        model = build_model(cfg)
    meta = {"config": cfg.dump(), "meta_arch": cfg.MODEL.META_ARCHITECTURE, "iteration": 4}
    atomic_save({"model": model.state_dict(), **meta}, str(path))
    return model.state_dict()


def _trunk():
    torch.manual_seed(0)
    return build_resnet(18, 16, "BN").state_dict()


def write_file(kind: str, folder) -> str:
    """A file of ``kind``, whose ResNet (when it has one) is a ResNet-18 at width 16."""
    path = str(folder / (kind.replace(" ", "_").replace("(", "").replace(")", "") + ".pth"))
    if kind == "insloc pretraining (fpn)":
        _insloc_checkpoint(path, "configs/quick/insloc_tiny_FPN.yaml")
    elif kind == "insloc pretraining (resnet)":
        _insloc_checkpoint(path, "configs/quick/moco_v2_tiny.yaml")
    elif kind == "insloc pretext (RotNet)":
        _insloc_checkpoint(path, "configs/quick/rotnet_NIN4_tiny.yaml")
    elif kind == "insloc fine-tuning":
        _insloc_checkpoint(path, DETECTOR)
    elif kind == "insloc dense":
        import dense_match  # noqa: F401  (registers "Dense")

        _insloc_checkpoint(path, DENSE_EVAL, *R18)
    elif kind == "torchvision (ResNet)":
        atomic_save({**_trunk(), "fc.weight": torch.zeros(10, 128)}, path)
    elif kind == "MoCo (official)":  # facebookresearch/moco's checkpoint_0199.pth.tar
        state = {f"module.encoder_q.{k}": v for k, v in _trunk().items()}
        state.update({f"module.encoder_k.{k}": v for k, v in _trunk().items()})
        state["module.encoder_q.fc.0.weight"] = torch.zeros(128, 128)
        state["module.queue"] = torch.zeros(128, 65536 // 64)
        atomic_save({"epoch": 200, "arch": "resnet18", "state_dict": state}, path)
    elif kind == "InsLoc (official)":  # the official release's mmdetection checkpoint
        state = {f"backbone.{k}": v for k, v in _trunk().items()}
        state.update({f"backbone_k.{k}": v for k, v in _trunk().items()})
        state["neck.lateral_convs.0.conv.weight"] = torch.zeros(32, 16, 1, 1)
        state["roi_head.bbox_head.shared_fcs.0.weight"] = torch.zeros(128, 32 * 49)
        atomic_save({"meta": {"epoch": 200}, "state_dict": state}, path)
    elif kind == "detectron2":
        path = path[: -len(".pth")] + ".pkl"
        torch.manual_seed(0)
        pretraining = build_model(
            load_config(os.path.join(ROOT, "configs/quick/moco_v2_tiny.yaml"))
        )
        write_detectron2_pkl(
            to_detectron2(pretraining_to_detector(pretraining.state_dict(), "fpn")), path
        )
    elif kind == "torchvision":  # an FPN detector's state dict in torchvision's names
        state = build_model(load_config(os.path.join(ROOT, DETECTOR))).state_dict()
        atomic_save({k: v for k, v in state.items() if k.startswith("backbone.")}, path)
    return path


def _args(tool, path, tmp_path):
    out = str(tmp_path / f"out_{tool}")
    if tool == "train_net":  # --eval-only without test sets: reads the weights, evaluates nothing
        return ["--config-file", DETECTOR, "--eval-only", "DATASETS.TEST", "()",
                "MODEL.WEIGHTS", path, "OUTPUT_DIR", out]  # fmt: skip
    if tool == "linear_eval":
        data = tmp_path / "data"
        if not data.exists():
            _write_folder_tree(data, per_class=3, side=36)
        return ["--data", str(data), "--checkpoint", path, "--resize", "32", "--crop", "32"]
    return ["--config-file", os.path.join(ROOT, DENSE_EVAL), *R18, "MATCHING.MAX_PAIRS", "1",
            "MODEL.WEIGHTS", path, "OUTPUT_DIR", out]  # fmt: skip


@pytest.mark.parametrize("kind", sorted(TAKEN_BY))
def test_every_tool_names_a_weight_file_the_same_way(tmp_path, capsys, kind):
    path = write_file(kind, tmp_path)
    weights = read_weight_file(path)
    assert weights.kind == kind
    taken = f"weights from {path} ({kind})"
    refused = f"{path} is {weights.description}, not "
    for tool in ("train_net", "linear_eval", "eval_matching"):
        code, stdout, stderr = run_main(capsys, tool, *_args(tool, path, tmp_path))
        if tool in TAKEN_BY[kind]:
            assert code == 0 and taken in stdout, (tool, stdout, stderr)
        else:
            assert code == 2 and error_lines(stderr) == [f"error: {refused}" + stderr.split(
                refused, 1)[-1].strip()], (tool, stderr)  # fmt: skip


def test_official_checkpoints_give_their_resnet_in_torchvision_names(tmp_path):
    trunk = _trunk()
    for kind in ("MoCo (official)", "InsLoc (official)"):
        weights = read_weight_file(write_file(kind, tmp_path))
        assert weights.task == "trunk" and sorted(weights.resnet_trunk()) == sorted(trunk)
        assert all(torch.equal(weights.tensors[k], v) for k, v in trunk.items())


def test_a_file_of_no_known_layout_is_named_as_such(tmp_path):
    path = str(tmp_path / "other.pth")
    atomic_save({"encoder.weight": torch.zeros(3)}, path)
    assert read_weight_file(path).kind == "state dict"
    atomic_save([1, 2], path)
    weights = read_weight_file(path)
    assert weights.kind == "unknown" and isinstance(weights, WeightFile)
    with pytest.raises(ValueError, match="other.pth is neither a checkpoint"):
        weights.require(("pretraining",), "a pretraining checkpoint")
