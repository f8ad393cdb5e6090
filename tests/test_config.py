import glob
import os

import pytest

from insloc.config import ConfigError, get_cfg, load_config
from insloc.config.defaults import _C
from insloc.engine.optim import schedule_in_iterations

from .conftest import ROOT

# Every insloc recipe; configs/detectron2/ holds detectron2's own configs (its engine loads them).
ALL_CONFIGS = sorted(
    p
    for p in glob.glob(os.path.join(ROOT, "configs", "**", "*.yaml"), recursive=True)
    if not os.path.basename(p).startswith("Base-")
    and os.sep + "detectron2" + os.sep not in os.path.relpath(p, ROOT)
)


def test_every_config_loads():
    assert len(ALL_CONFIGS) >= 7
    for path in ALL_CONFIGS:
        cfg = load_config(path)
        assert cfg.is_frozen()


@pytest.mark.parametrize(
    "name,arch,backbone",
    [
        ("pretrain/insloc_R50_FPN_200ep.yaml", "InsLoc", "resnet_fpn"),
        ("pretrain/insloc_R50_C4_200ep.yaml", "InsLoc", "resnet_c4"),
        ("pretrain/moco_v2_R50_200ep.yaml", "MoCo", "resnet"),
    ],
)
def test_recipes_follow_protocol(name, arch, backbone):
    cfg = load_config(os.path.join(ROOT, "configs", name))
    assert cfg.MODEL.META_ARCHITECTURE == arch and cfg.MODEL.BACKBONE.NAME == backbone
    assert cfg.MODEL.RESNETS.DEPTH == 50 and cfg.MODEL.MOCO.QUEUE_SIZE == 65536
    assert cfg.MODEL.MOCO.MOMENTUM == 0.999 and cfg.MODEL.MOCO.TEMPERATURE == 0.2
    assert cfg.SOLVER.BASE_LR == 0.03 and cfg.SOLVER.IMS_PER_BATCH == 256
    assert cfg.SOLVER.EPOCHS == 200 and cfg.SOLVER.MAX_ITER == 0  # derived from the epochs
    assert schedule_in_iterations(cfg, 1281167)[:2] == (200 * 5004, 5 * 5004)
    assert cfg.SOLVER.NESTEROV == (arch == "InsLoc")


def test_every_default_key_has_a_comment():
    # defaults.py and the stage modules it calls (defaults_detection.py, ...), indentation dropped
    text = [
        line.strip()
        for path in sorted(glob.glob(os.path.join(ROOT, "insloc", "config", "defaults*.py")))
        for line in open(path).read().splitlines()
    ]

    def leaves(node, prefix):
        for k, v in node.items():
            if isinstance(v, type(node)):
                yield from leaves(v, prefix + k + ".")
            else:
                yield prefix + k

    for key in leaves(_C, ""):
        if key == "VERSION":
            continue
        j = next(i for i, t in enumerate(text) if t.startswith(f"_C.{key} ="))
        # keys may share the comment above a group of related keys (no blank line between them)
        while text[j - 1].startswith("_C.") and not text[j - 1].endswith("CN()"):
            j -= 1
        assert text[j - 1].strip().startswith("#"), f"{key} has no comment in defaults*.py"


def test_overrides_and_freeze():
    cfg = load_config(
        "",
        [
            "SOLVER.MAX_ITER",
            "7",
            "MODEL.ROI_BOX_HEAD.IN_FEATURES",
            "['p5']",
            "INPUT.BOX_AUG.QUERY_FEATURES",
            "['p5']",
        ],
    )
    assert cfg.SOLVER.MAX_ITER == 7 and list(cfg.MODEL.ROI_BOX_HEAD.IN_FEATURES) == ["p5"]
    with pytest.raises(AttributeError):
        cfg.SOLVER.MAX_ITER = 8
    assert get_cfg().SOLVER.MAX_ITER != 7  # the defaults are untouched
    # an integer where the key holds a float means that float
    cfg = load_config("", ["SOLVER.BASE_LR", "1", "INPUT.COLOR.JITTER_PROB", "0"])
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.INPUT.COLOR.JITTER_PROB == 0.0


@pytest.mark.parametrize(
    "opts,needle",
    [
        (["SOLVER.NOT_A_KEY", "1"], "SOLVER.NOT_A_KEY"),
        (["SOLVER.MAX_ITER", "many"], "SOLVER.MAX_ITER"),
        (["MODEL.RESNETS.NORM", "LayerNorm"], "MODEL.RESNETS.NORM"),
        (["INPUT.COLOR.FLIP_PROB", "1.5"], "INPUT.COLOR.FLIP_PROB"),
        (["MODEL.ROI_BOX_HEAD.IN_FEATURES", "['p6']"], "MODEL.ROI_BOX_HEAD.IN_FEATURES"),
        (["INPUT.BOX_AUG.QUERY_FEATURES", "['res4']"], "INPUT.BOX_AUG.QUERY_FEATURES"),
        (["MODEL.BACKBONE.NAME", "resnet"], "MODEL.BACKBONE.NAME"),
        (["INPUT.COPY_PASTE.PASTE_SIZE", "(128, 300)"], "INPUT.COPY_PASTE.PASTE_SIZE"),
        (["SOLVER.MAX_ITER"], "SOLVER.MAX_ITER"),
    ],
)
def test_bad_values_name_the_key(opts, needle):
    with pytest.raises(ConfigError) as e:
        load_config("", opts)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("SOLVER:\n  MAX_ITRE: 3\n")
    with pytest.raises(ConfigError, match="bad.yaml.*SOLVER.MAX_ITRE"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(str(tmp_path / "missing.yaml"))


def test_cli_config_error_is_one_line(tool, tmp_path):
    proc = tool(
        "tools/pretrain_net.py",
        "--config-file",
        "configs/quick/insloc_tiny_FPN.yaml",
        "SOLVER.MAX_ITRE",
        "3",
        "OUTPUT_DIR",
        str(tmp_path / "out"),
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "SOLVER.MAX_ITRE" in proc.stderr
    assert not (tmp_path / "out").exists()
