import torch

from insloc.config import load_config
from insloc.evaluation import build_heldout_batch, instance_discrimination_accuracy
from insloc.modeling import build_model

from .conftest import config_path


def test_instance_discrimination_is_held_out_and_restores_training_mode():
    cfg = load_config(config_path("quick/insloc_tiny_FPN.yaml"))
    torch.manual_seed(0)
    model = build_model(cfg).train()
    batch = build_heldout_batch(cfg, 8)
    assert batch["q"].shape == (8, 3, 128, 128) and batch["q_boxes"].shape == (8, 4, 4)
    # a fixed set: built twice, it is the same
    assert torch.equal(build_heldout_batch(cfg, 8)["k"], batch["k"])
    result = instance_discrimination_accuracy(model, batch, torch.device("cpu"), chunk=3)
    assert set(result) == {"p2", "p3", "p4", "p5", "mean"}
    assert all(0.0 <= v <= 1.0 for v in result.values())
    assert model.training
    # identical query and key views are matched perfectly (eval-mode embeddings are per sample)
    same = dict(batch, k=batch["q"], k_boxes=batch["q_boxes"])
    assert instance_discrimination_accuracy(model.eval(), same, torch.device("cpu"))["mean"] == 1.0
    assert not model.training
