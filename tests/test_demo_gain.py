"""The demo's promise, as a property: its recipe trains a network that beats the initial one on
held-out instance discrimination (the figures themselves vary with the torch build)."""

from insloc.config import load_config
from insloc.engine.pretrain import PretrainTrainer

from .conftest import config_path


def test_demo_recipe_beats_the_initial_network(tmp_path):
    # The demo recipe shortened to 60 iterations (of its 500) and 128 held-out samples (chance
    # 0.8%); measured with torch 2.15.0 on CPU: mean accuracy 5.1% -> 9.8%.
    opts = [
        "OUTPUT_DIR",
        str(tmp_path),
        "SOLVER.MAX_ITER",
        "60",
        "TEST.INSTANCE_DISC_SAMPLES",
        "128",
    ]
    opts += ["DATALOADER.NUM_WORKERS", "0", "VIS_SAMPLES", "0", "SOLVER.CHECKPOINT_PERIOD", "1000"]
    opts += ["LOG_PERIOD", "1000"]
    cfg = load_config(config_path("quick/insloc_tiny_FPN_demo.yaml"), opts)
    history = PretrainTrainer(cfg).train()
    assert sorted(history) == [0, 60]
    initial, trained = history[0]["mean"], history[60]["mean"]
    assert trained > initial + 0.02, (initial, trained)
