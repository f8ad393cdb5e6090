"""Resuming a pretext run with another trunk or task is a one-line error naming the key and both
values, never a state-dict crash or a silent resume into another task."""

import pytest

from insloc.config import load_config
from insloc.engine.pretrain import PretrainTrainer

# (quick config, key, value of the resuming config, other keys it needs); the first two differ only
# in meaning, not in shapes
CHANGES = [
    ("rotnet_NIN4_tiny", "MODEL.ROTATION.ANGLES", "(0, 45, 90, 135)"),
    ("jigsaw_R18_tiny", "MODEL.JIGSAW.PERMUTATION_SEED", 1),
    ("rotnet_NIN4_tiny", "MODEL.ROTATION.ANGLES", "(0, 180)"),
    ("rotnet_NIN4_tiny", "MODEL.NIN.NUM_BLOCKS", 3),
    ("rotnet_NIN4_tiny", "MODEL.NIN.WIDTH", 8),
    ("jigsaw_R18_tiny", "MODEL.JIGSAW.NUM_PERMUTATIONS", 8),
    ("jigsaw_R18_tiny", "MODEL.RESNETS.WIDTH", 16),
    ("jigsaw_R18_tiny", "MODEL.BACKBONE.NAME", "resnet_v2", "MODEL.RESNETS.DEPTH", 50),
    ("jigsaw_R18_tiny", "MODEL.RESNETS.LAST_RELU", False),
    ("relative_loc_VGG_tiny", "MODEL.VGG.WIDTH", 8),
    ("relative_loc_VGG_tiny", "MODEL.BACKBONE.NAME", "resnet"),
    ("exemplar_tiny", "MODEL.EXEMPLAR_CNN.SPEC", "16c5-32c5-32f"),
    ("exemplar_tiny", "MODEL.EXEMPLAR.NUM_CLASSES", 32),
]


def config(name, out, *opts):
    base = ["MODEL.DEVICE", "cpu", "SOLVER.MAX_ITER", 1, "SOLVER.STEPS", "(1,)", "OUTPUT_DIR", out]
    return load_config(f"configs/quick/{name}.yaml", [str(o) for o in base + list(opts)])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One 1-iteration run of each quick config used below, in its own OUTPUT_DIR."""
    out = {}
    for name in sorted({c[0] for c in CHANGES}):
        out[name] = str(tmp_path_factory.mktemp(name))
        PretrainTrainer(config(name, out[name])).train()
    return out


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_resume_with_another_trunk_or_task_names_the_key(runs, change):
    name, key, value, *others = change
    saved = config(name, runs[name])
    for part in key.split("."):
        saved = saved[part]
    saved = list(saved) if isinstance(saved, tuple) else saved  # as the checkpoint's yaml has it
    cfg = config(name, runs[name], key, value, *others)
    with pytest.raises(ValueError) as e:
        PretrainTrainer(cfg, resume=True)
    message = str(e.value)
    assert f"with {key} = {saved!r}, this config has" in message and "\n" not in message


def test_resume_ignores_keys_of_other_trunks_and_methods(runs):
    # a VGG width or a jigsaw permutation count means nothing to RotNet on a NIN
    cfg = config(
        "rotnet_NIN4_tiny", runs["rotnet_NIN4_tiny"], "MODEL.VGG.WIDTH", 8,
        "MODEL.JIGSAW.NUM_PERMUTATIONS", 8, "SOLVER.MAX_ITER", 2,
    )  # fmt: skip
    trainer = PretrainTrainer(cfg, resume=True)
    assert trainer.start_iter == 1
