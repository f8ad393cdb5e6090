"""benchmarks/bench_transfer.py and insloc.transfer.study: the study's bookkeeping (tiny runs)."""

import json

import pytest

from insloc.transfer.study import gains_over_random, mean_std

from .conftest import load_script

TINY_FINETUNE = [
    "SOLVER.MAX_ITER", "4", "DATASETS.SYNTHETIC.NUM_IMAGES", "8",
    "DATASETS.SYNTHETIC.NUM_TEST_IMAGES", "4", "TEST.PRECISE_BN.NUM_ITER", "1",
    "DATALOADER.NUM_WORKERS", "0", "SOLVER.IMS_PER_BATCH", "2", "SOLVER.REFERENCE_BATCH_SIZE", "2",
]  # fmt: skip


def _bench():
    return load_script("benchmarks/bench_transfer.py").main


def test_mean_std_and_the_claim_of_value():
    assert mean_std([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))  # sample std, n - 1
    labels = {"random": "random", "a": "A", "b": "B"}
    rows = {"random": [2.0, 3.0, 2.5], "a": [10.0, 11.0, 12.0], "b": [3.0, 2.0, 4.5]}
    lines = gains_over_random(rows, labels)
    assert len(lines) == 2
    assert "A" in lines[0] and "+8.5" in lines[0] and lines[0].endswith("yes")
    # B gains 0.67 with a spread of 1.26: not a claim of value
    assert "B" in lines[1] and "+0.7" in lines[1] and lines[1].endswith("no")
    assert gains_over_random({"a": [1.0]}, labels) == []


def test_bench_transfer_runs_every_init_and_seed_and_reuses_its_runs(tmp_path, capsys):
    out = tmp_path / "bench"
    args = [
        "--output-dir", str(out), "--seeds", "0", "1", "--inits", "random", "supervised",
        "--eval-period", "2", "--no-probes", "--finetune-opts", *TINY_FINETUNE,
        "--pretrain-opts", *TINY_FINETUNE,
    ]  # fmt: skip
    assert _bench()(args) == 0
    printed = capsys.readouterr().out
    assert "supervised (control)" in printed and "2 x the larger spread" in printed
    report = json.loads((out / "results.json").read_text())
    assert report["seeds"] == [0, 1]
    for init in ("random", "supervised"):
        for metric in ("box_AP", "mask_AP"):
            values = report["rows"][init][metric]
            assert len(values) == 2 and all(0 <= v <= 100 for v in values)
        # the curve: one evaluation every 2 iterations of the 4, the last one the final result
        curve = report["curves"][init]["1"]
        assert sorted(curve, key=int) == ["2", "4"]
        assert curve["4"][0] == report["rows"][init]["box_AP"][1]
    assert (out / "curves.png").stat().st_size > 0
    trunk = out / "pretrain" / "supervised" / "trunk_torchvision.pth"
    assert report["weights"]["supervised"]["path"] == str(trunk) and trunk.exists()
    assert report["weights"]["random"]["path"] == ""

    # A second run with the same folder trains nothing and prints the same table.
    assert _bench()(args) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["rows"] == report["rows"]
    assert all(w["reused"] for w in again["weights"].values())
    assert all(r["reused"] for r in again["finetune"].values())
