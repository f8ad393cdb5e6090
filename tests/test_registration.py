"""A method is one module plus one registration, and so is a backbone: this file alone adds a toy
pretext task ("which way is the crop mirrored?") and a toy trunk, and tools/pretrain_net.py's
``main`` trains them two iterations, checks the config, saves checkpoints of the method's task
and refuses a resume with another value of the method's arch key, as for insloc's own methods."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from insloc.config import ConfigError, load_config
from insloc.config.registry import register_backbone, register_method
from insloc.data.pretext import PretextDataset, stack_views
from insloc.modeling.backbone.taps import PRE_LOGITS, TappedTrunk
from insloc.modeling.pretext_base import PretextModel, classification_outputs
from insloc.transfer.weight_file import read_weight_file

from .test_output_dir import run_main

CONFIG = "configs/quick/rotnet_NIN4_tiny.yaml"  # a pretext recipe: the toy takes its data keys


@register_backbone("trunk", arch_keys=("MODEL.NIN.WIDTH",))
def toy_trunk(cfg) -> nn.Module:
    """Two strided convs at MODEL.NIN.WIDTH channels."""
    return ToyTrunk(cfg.MODEL.NIN.WIDTH)


class ToyTrunk(TappedTrunk):
    def __init__(self, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, stride=2, padding=1)
        self.out_channels, self.strides = width, {PRE_LOGITS: 4}

    def named_stages(self):
        return [("block1", lambda x: self.conv1(x).relu()), (PRE_LOGITS, self.conv2)]


class MirrorDataset(PretextDataset):
    """A crop and its mirror image, labelled 0 and 1."""

    @classmethod
    def from_config(cls, cfg, source) -> "MirrorDataset":
        return cls(source, **cls.base_kwargs(cfg))

    def __getitem__(self, key) -> dict:
        epoch, index = key
        bad = [0]
        index, crop = self.load_crop(index, np.random.default_rng([self.seed, epoch, index]), bad)
        return {
            "images": stack_views([crop, np.ascontiguousarray(crop[:, ::-1])]),  # 2 x 3 x S x S
            "labels": torch.arange(2),
            "index": index,
            "num_bad": bad[0],
        }


class Mirror(PretextModel):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.head = nn.Linear(self.backbone.out_channels, 2)

    @classmethod
    def from_config(cls, cfg) -> "Mirror":
        return cls(**cls.base_kwargs(cfg))

    def forward(self, batch: dict) -> dict:
        logits = self.head(self.embed(batch["images"].flatten(0, 1)))  # 2N x 2
        return classification_outputs(logits, batch["labels"].flatten())


def validate(cfg, fail) -> None:
    if cfg.INPUT.PRETEXT.CROP_SIZE % 4:
        fail("INPUT.PRETEXT.CROP_SIZE", "a multiple of 4 for Mirror")


register_method(
    "Mirror",
    task="pretext",
    model=Mirror,
    dataset=MirrorDataset,
    validate=validate,
    arch_keys=("INPUT.PRETEXT.CROP_SIZE",),
    backbone_kind="trunk",
)


def _argv(out, *opts):
    toy = ["MODEL.META_ARCHITECTURE", "Mirror", "MODEL.BACKBONE.NAME", "toy_trunk"]
    run = ["SOLVER.MAX_ITER", "2", "SOLVER.STEPS", "(1,)", "OUTPUT_DIR", str(out)]
    return ["--config-file", CONFIG, *toy, *run, *opts]


def test_a_method_and_a_backbone_registered_here_train_through_pretrain_net(tmp_path, capsys):
    out = tmp_path / "mirror"
    code, stdout, stderr = run_main(capsys, "pretrain_net", *_argv(out))
    assert code == 0, stderr
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in rows if "loss_cls" in r] == [1, 2]
    weights = read_weight_file(str(out / "model_final.pth"))
    assert weights.kind == "insloc pretext (Mirror)" and weights.task == "pretext"
    assert "backbone.conv2.weight" in weights.tensors and "head.weight" in weights.tensors

    # its arch key is checked on --resume like any method's, its trunk's like any backbone's
    for key, value in (("INPUT.PRETEXT.CROP_SIZE", "24"), ("MODEL.NIN.WIDTH", "8")):
        code, _, stderr = run_main(capsys, "pretrain_net", "--resume", *_argv(out, key, value))
        assert code == 2 and f"with {key} = " in stderr


def test_the_registered_validation_and_backbone_kind_are_checked_when_the_config_loads():
    opts = ["MODEL.META_ARCHITECTURE", "Mirror", "MODEL.BACKBONE.NAME", "toy_trunk"]
    assert load_config(CONFIG, opts).MODEL.BACKBONE.NAME == "toy_trunk"
    with pytest.raises(ConfigError, match="INPUT.PRETEXT.CROP_SIZE = 30: expected a multiple of 4"):
        load_config(CONFIG, opts + ["INPUT.PRETEXT.RESIZE", "32", "INPUT.PRETEXT.CROP_SIZE", "30"])
    with pytest.raises(ConfigError, match="MODEL.BACKBONE.NAME = 'resnet_fpn'"):
        load_config(CONFIG, opts[:3] + ["resnet_fpn"])  # a registered backbone, but no trunk
    # insloc's own pretext methods take the new trunk too: the registry says it is one
    assert load_config(CONFIG, opts[2:]).MODEL.META_ARCHITECTURE == "RotNet"
