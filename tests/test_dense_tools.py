"""tools/train_dense.py and tools/eval_matching.py end to end on the quick configs (CPU, tiny)."""

import json
import os
import shutil

import pytest
import torch

from insloc.transfer.weight_file import load_checkpoint

from .conftest import ROOT, load_script

INTRO = "configs/quick/dense_introspection_tiny.yaml"
ANCHOR = "configs/quick/dense_anchornet_tiny.yaml"
EVAL = "configs/quick/dense_eval_tiny.yaml"
ENV = {"OMP_NUM_THREADS": "1"}


def eval_matching(*argv) -> int:
    """tools/eval_matching.py's main in this process (a subprocess costs seconds of imports)."""
    return load_script("tools/eval_matching.py").main(list(argv))


def train(out, config=INTRO, *opts, resume=False):
    args = ["tools/train_dense.py", "--config-file", config]
    args += ["--resume"] if resume else []
    return [*args, "OUTPUT_DIR", str(out), *map(str, opts)]


def test_train_dense_resume_is_exact_then_eval_matching(tool, tmp_path):
    full = tmp_path / "full"
    proc = tool(*train(full), env=ENV, check=True)
    for name in ("model_0000001.pth", "model_final.pth", "metrics.jsonl", "config.yaml", "log.txt"):
        assert (full / name).exists(), name
    log = (full / "log.txt").read_text()
    assert "PCK@0.1" in log and "initial network" in log, proc.stderr[-2000:]
    records = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [1, 2, 3, 4]
    assert all("loss_pos" in r and "loss_neg" in r for r in records)

    # A run stopped after its iteration-2 checkpoint and resumed ends with the same weights.
    part = tmp_path / "part"
    part.mkdir()
    shutil.copy(full / "model_0000001.pth", part / "model_0000001.pth")
    (part / "last_checkpoint").write_text("model_0000001.pth")
    tool(*train(part, resume=True), env=ENV, check=True)
    a = load_checkpoint(str(full / "model_final.pth"))["model"]
    b = load_checkpoint(str(part / "model_final.pth"))["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k

    # the trained checkpoint evaluates: pck.json with exactly the fields
    out = tmp_path / "eval"
    proc = tool(
        "tools/eval_matching.py", "--config-file", INTRO,
        "MODEL.WEIGHTS", str(full / "model_final.pth"), "OUTPUT_DIR", str(out),
        env=ENV, check=True,
    )  # fmt: skip
    result = json.loads((out / "pck.json").read_text())
    assert list(result) == [
        "dataset", "pck@0.05", "pck@0.1", "pck@0.15", "per_class", "norm", "resize", "average",
        "pairs", "pairs_skipped", "keypoints", "seed",
    ]  # fmt: skip
    assert result["dataset"] == "warp" and result["pairs"] == 4 and result["keypoints"] == 40
    assert (result["norm"], result["resize"], result["average"]) == (
        "image",
        "original",
        "per_keypoint",
    )
    assert 0 <= result["pck@0.05"] <= result["pck@0.1"] <= result["pck@0.15"] <= 100
    assert "normalised by image" in proc.stdout and "sigma ROC AUC" in proc.stdout


def test_train_anchornet_quick(tool, tmp_path):
    out = tmp_path / "anchor"
    tool(*train(out, ANCHOR, "TEST.MATCHING_PAIRS", 0), env=ENV, check=True)
    records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert all("loss_discriminability" in r and "loss_autoencoder" in r for r in records)


def test_eval_matching_torchvision_weights_and_protocol_override(tmp_path, capsys):
    from insloc.modeling.backbone import build_resnet

    state = build_resnet(50, 8, "BN").state_dict()
    state["fc.weight"] = torch.zeros(10, 256)  # a classifier the loader must ignore
    path = tmp_path / "resnet.pth"
    torch.save(state, path)
    out = tmp_path / "eval"
    code = eval_matching(
        "--config-file", os.path.join(ROOT, EVAL), "MODEL.WEIGHTS", str(path),
        "MATCHING.PCK_NORM", "kps_padded", "MATCHING.PCK_AVERAGE", "per_image",
        "MATCHING.PCK_RESIZE", "resized", "MATCHING.METHOD", "mutual_nn", "OUTPUT_DIR", str(out),
    )  # fmt: skip
    stdout = capsys.readouterr().out
    assert code == 0
    result = json.loads((out / "pck.json").read_text())
    assert (result["norm"], result["resize"], result["average"]) == (
        "kps_padded",
        "resized",
        "per_image",
    )
    assert "normalised by kps_padded" in stdout and "resized pixels" in stdout


@pytest.mark.parametrize(
    "opts, message",
    [
        (["DATASETS.TEST", "/no/such/folder"], "PF-PASCAL"),
        (["DENSE.FEATURES.LAYERS", "['res9']"], "res2"),
        (["MODEL.WEIGHTS", "/no/such.pth"], "/no/such.pth"),
    ],
)
def test_eval_matching_bad_input_is_one_line(capsys, opts, message):
    assert eval_matching("--config-file", os.path.join(ROOT, EVAL), *opts) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith("error:") and message in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_weights_from_an_insloc_pretraining_checkpoint(tmp_path):
    from dense_match.model import build_dense_model
    from insloc.config import load_config
    from insloc.modeling import build_model
    from insloc.utils.file_io import atomic_save

    moco = build_model(load_config(os.path.join(ROOT, "configs/quick/moco_v2_tiny.yaml")))
    path = tmp_path / "moco.pth"
    atomic_save({"model": moco.state_dict(), "meta_arch": "MoCo"}, str(path))
    cfg = load_config(
        os.path.join(ROOT, EVAL),
        ["MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.WIDTH", "16", "MODEL.WEIGHTS", str(path)],
    )
    model = build_dense_model(cfg)
    trunk = model.features.trunk.state_dict()
    source = moco.state_dict()
    assert all(torch.equal(v, source["encoder_q.backbone." + k]) for k, v in trunk.items())
    bad = load_config(os.path.join(ROOT, EVAL), ["MODEL.WEIGHTS", str(path)])  # width 8, R50
    with pytest.raises(ValueError, match="does not fit"):
        build_dense_model(bad)


@pytest.mark.parametrize(
    "opts, message",
    [
        (["DENSE.WARP.TPS_GRID", "1"], "DENSE.WARP.TPS_GRID = 1: expected at least 2"),
        (["DENSE.INTROSPECTION.NEG_DIST", "0.5"], "above DENSE.INTROSPECTION.POS_DIST"),
        (["MATCHING.PCK_NORM", "box"], "'image', 'bbox', 'kps', 'kps_padded'"),
        (["DENSE.HEAD", "Foo"], "'Introspection', 'AnchorNet', ''"),
    ],
)
def test_dense_config_errors_name_the_key(opts, message):
    from insloc.config import ConfigError, load_config

    with pytest.raises(ConfigError, match=message):
        load_config(os.path.join(ROOT, EVAL), opts)


def test_dilation_needs_the_plain_resnet_backbone():
    from insloc.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="MODEL.RESNETS.RES5_DILATION"):
        load_config("", ["MODEL.RESNETS.RES5_DILATION", "2"])  # defaults: InsLoc R-FPN
