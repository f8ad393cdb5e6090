"""The path from a checkpoint to a fine-tuned detector keeps what the weights carry (issue 21's
audit): the query encoder is what transfers, BN statistics and affine terms arrive as saved
through the trainer's own set-up (FREEZE_AT, FrozenBN, deferred SyncBN), a trunk trained with labels
exports and loads whole, and the two ways of losing the weights silently are errors."""

import pytest
import torch

from insloc.config import load_config
from insloc.engine.finetune import DetectionTrainer
from insloc.modeling import build_model
from insloc.modeling.norm import FrozenBatchNorm2d
from insloc.transfer.weights import load_detection_weights, trunk_keys
from insloc.utils.file_io import atomic_save

from .conftest import config_path
from .test_convert import _cli

FPN = config_path("quick/det_tiny_FPN.yaml")


def _detector_cfg(out, *opts):
    return load_config(FPN, ["OUTPUT_DIR", str(out), *[str(o) for o in opts]])


def _pretraining(path, moved_key_encoder=True):
    """A tiny InsLoc R-FPN checkpoint whose key encoder differs from its query encoder, and whose
    BN running statistics and affine terms are not their initial values."""
    torch.manual_seed(0)
    cfg = load_config(config_path("quick/insloc_tiny_FPN.yaml"))
    model = build_model(cfg)
    state = model.state_dict()
    gen = torch.Generator().manual_seed(1)
    for k, v in state.items():
        if v.is_floating_point() and ("bn" in k or "downsample.1" in k):
            v.copy_(torch.rand(v.shape, generator=gen) + 0.5)  # weight, bias, mean, var > 0
        if moved_key_encoder and k.startswith("encoder_k.") and v.is_floating_point():
            v.add_(1.0)
    atomic_save({"model": state, "iteration": 4, "config": cfg.dump()}, path)
    return state


def test_the_query_encoder_transfers_with_its_bn_statistics(tmp_path):
    path = str(tmp_path / "pre.pth")
    state = _pretraining(path)
    out = tmp_path / "ft"
    # FREEZE_AT 2 turns the stem and res2 into FrozenBN: the statistics must survive it too.
    trainer = DetectionTrainer(
        _detector_cfg(out, "MODEL.WEIGHTS", path, "MODEL.BACKBONE.FREEZE_AT", 2)
    )
    loaded = trainer.model.state_dict()
    body = [k for k in loaded if k.startswith("backbone.body.")]
    assert body and all(
        torch.equal(loaded[k], state["encoder_q." + k]) for k in body if "num_batches" not in k
    )
    assert not torch.equal(
        state["encoder_q.backbone.body.bn1.weight"], state["encoder_k.backbone.body.bn1.weight"]
    )
    assert isinstance(trainer.model.backbone.body.bn1, FrozenBatchNorm2d)
    for name in ("bn1.running_mean", "bn1.running_var", "layer3.0.bn2.running_var"):
        assert torch.equal(
            loaded["backbone.body." + name], state["encoder_q.backbone.body." + name]
        )
    fpn = [k for k in loaded if k.startswith("backbone.fpn.")]
    assert fpn and all(torch.equal(loaded[k], state["encoder_q." + k]) for k in fpn)


def test_a_fine_tuned_trunk_transfers_whole_through_torchvision_names(tmp_path):
    """The positive control's path: a detector trained with labels -> its trunk in torchvision's
    names (convert_checkpoint.py --to torchvision) -> MODEL.WEIGHTS of a new detector."""
    torch.manual_seed(3)
    source = build_model(_detector_cfg(tmp_path))
    checkpoint, trunk = str(tmp_path / "model_final.pth"), str(tmp_path / "trunk.pth")
    atomic_save({"model": source.state_dict(), "iteration": 4}, checkpoint)
    _cli()([checkpoint, trunk, "--to", "torchvision"])
    trainer = DetectionTrainer(_detector_cfg(tmp_path / "ft", "MODEL.WEIGHTS", trunk))
    loaded, expected = trainer.model.state_dict(), source.state_dict()
    keys = trunk_keys(loaded)
    assert len(keys) == 100  # ResNet-18 without fc and the 20 BN batch counters
    assert all(torch.equal(loaded[k], expected[k]) for k in keys)
    # Only the trunk: the FPN and the heads keep the new run's own initialisation.
    assert not torch.equal(
        loaded["backbone.fpn.inner_blocks.0.0.weight"],
        expected["backbone.fpn.inner_blocks.0.0.weight"],
    )


def test_a_file_that_fills_little_of_the_trunk_is_an_error(tmp_path):
    torch.manual_seed(0)
    model = build_model(_detector_cfg(tmp_path))
    state = model.state_dict()
    # A file with only the stem matching (say, another naming of the stages).
    body = "backbone.body."
    partial = {
        (k.replace(body + "layer", body + "stage")): v
        for k, v in state.items()
        if k.startswith(body)
    }
    path = str(tmp_path / "partial.pth")
    torch.save(partial, path)
    with pytest.raises(
        ValueError, match=r"fills only \d+ of the 100 tensors of the model's ResNet trunk"
    ):
        load_detection_weights(model, path)


def test_a_partly_filled_trunk_is_named_in_a_warning(tmp_path, caplog):
    torch.manual_seed(0)
    model = build_model(_detector_cfg(tmp_path))
    trunk = {
        k[len("backbone.body.") :]: v
        for k, v in model.state_dict().items()
        if k.startswith("backbone.body.")
    }
    del trunk["layer4.1.conv2.weight"]
    path = str(tmp_path / "trunk.pth")
    torch.save(trunk, path)
    load_detection_weights(model, path)
    assert (
        "1 of the 100 trunk tensors are not in" in caplog.text
        and "layer4.1.conv2.weight" in caplog.text
    )


def test_another_pixel_normalisation_than_the_pretraining_is_an_error(tool, tmp_path):
    path = tmp_path / "pre.pth"
    _pretraining(str(path))
    out = tmp_path / "ft"
    proc = tool(
        "tools/train_net.py", "--config-file", FPN, "OUTPUT_DIR", str(out), "MODEL.WEIGHTS",
        str(path), "MODEL.PIXEL_MEAN", "[103.53, 116.28, 123.675]",
    )  # fmt: skip
    assert proc.returncode == 2
    assert "was trained with MODEL.PIXEL_MEAN [123.675, 116.28, 103.53]" in proc.stderr
    assert not (out / "model_final.pth").exists()
