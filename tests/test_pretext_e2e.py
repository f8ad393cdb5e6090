import json
import math

import pytest

from insloc.transfer.weight_file import load_checkpoint

from .test_pretext_models import QUICK


@pytest.mark.parametrize("config", QUICK)
def test_quick_pretext_configs_run_end_to_end(tool, tmp_path, config):
    out = tmp_path / "run"
    tool(
        "tools/pretrain_net.py",
        "--config-file",
        config,
        "SOLVER.MAX_ITER",
        "2",
        "SOLVER.STEPS",
        "(1,)",
        "OUTPUT_DIR",
        str(out),
        check=True,
    )
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [1, 2]
    loss = "loss_triplet" if "triplet" in config else "loss_cls"
    assert all(math.isfinite(r[loss]) and r["num_bad_images"] == 0 for r in records)
    # the multi-step schedule stepped at iteration 1: lr 0.05 x GAMMA 0.2 from there on
    assert records[-1]["lr"] == pytest.approx(0.05 * 0.2)
    ckpt = load_checkpoint(str(out / "model_final.pth"))
    assert ckpt["iteration"] == 2 and any(k.startswith("backbone.") for k in ckpt["model"])
