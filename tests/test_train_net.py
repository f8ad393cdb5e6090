"""End-to-end runs of tools/train_net.py on the quick detection configs (tiny networks, CPU)."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch

from insloc.transfer.weight_file import load_checkpoint

from .conftest import ROOT
from .test_engine import _wait_for

FPN = "configs/quick/det_tiny_FPN.yaml"
C4 = "configs/quick/det_tiny_C4.yaml"


def train_net(out, *opts, config=FPN, flags=()):
    return ["tools/train_net.py", "--config-file", config, *flags, "OUTPUT_DIR", str(out)] + [
        str(o) for o in opts
    ]


def results(out):
    return json.loads((out / "results.json").read_text())


@pytest.mark.parametrize("config", [C4, FPN])
def test_quick_detection_configs_train_and_evaluate(tool, tmp_path, config):
    out = tmp_path / "run"
    proc = tool(*train_net(out, config=config), check=True)
    for name in ("config.yaml", "metrics.jsonl", "model_final.pth", "model_0000001.pth", "log.txt"):
        assert (out / name).exists(), name
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records] == [1, 2, 3, 4]
    assert {"loss_rpn_cls", "loss_cls", "loss_box_reg", "loss_mask"} <= set(records[0])
    # The lr of the next iteration: warm-up over 2 iterations, then 0.02, then 0.1x from the step.
    assert [r["lr"] for r in records] == pytest.approx([0.01001, 0.02, 0.002, 0.002])
    res = results(out)["synthetic_test"]
    for task in ("bbox", "segm"):
        assert {"AP", "AP50", "AP75"} <= set(res[task]) and 0 <= res[task]["AP"] <= 100
        # the evaluation's numbers in metrics.jsonl, in the row of their iteration
        assert records[-1][f"synthetic_test/{task}/AP"] == res[task]["AP"]
    detections = out / "inference" / "synthetic_test" / "coco_instances_results.json"
    assert isinstance(json.loads(detections.read_text()), list)
    log = (out / "log.txt").read_text()
    assert "precise BN" in log and "MODEL.WEIGHTS is empty" in log
    assert "Traceback" not in proc.stderr


def test_fine_tunes_from_a_pretraining_checkpoint_and_evaluates_it_again(tool, tmp_path):
    pre = tmp_path / "pre"
    tool(
        "tools/pretrain_net.py", "--config-file", "configs/quick/insloc_tiny_FPN.yaml",
        "OUTPUT_DIR", str(pre), "SOLVER.MAX_ITER", "2", check=True,
    )  # fmt: skip
    out = tmp_path / "ft"
    tool(*train_net(out, "MODEL.WEIGHTS", pre / "model_final.pth"), check=True)
    log = (out / "log.txt").read_text()
    assert "backbone" in log and "missing" in log  # the loading table
    pretrained = load_checkpoint(str(pre / "model_final.pth"))["model"]
    # Flags after the overrides; evaluation of the fine-tuned weights reproduces its results.
    again = tmp_path / "eval"
    tool(*train_net(again, "MODEL.WEIGHTS", out / "model_final.pth"), "--eval-only", check=True)
    assert results(again) == results(out)
    assert not (again / "model_final.pth").exists()
    assert any(k.startswith("encoder_q.backbone.body") for k in pretrained)


def test_resume_after_sigkill_is_bit_exact(tool, tmp_path):
    opts = ["SOLVER.MAX_ITER", 6, "SOLVER.CHECKPOINT_PERIOD", 2, "DATALOADER.NUM_WORKERS", 2]
    opts += ["TEST.EVAL_PERIOD", 2, "DATASETS.SYNTHETIC.NUM_TEST_IMAGES", 2]
    tool(*train_net(tmp_path / "ref", *opts), check=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, *train_net(killed, *opts)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _wait_for(killed / "model_0000003.pth", proc, timeout=300)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "model_final.pth").exists()
    tool(*train_net(killed, *opts, flags=["--resume"]), check=True)
    ref = load_checkpoint(str(tmp_path / "ref" / "model_final.pth"))
    res = load_checkpoint(str(killed / "model_final.pth"))
    for k in ref["model"]:
        assert torch.equal(ref["model"][k], res["model"][k]), k


def test_two_processes_finish_with_identical_weights(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(port),
        "tests/dist_finetune_worker.py", str(tmp_path), "SOLVER.MAX_ITER", "3",
        "DATASETS.SYNTHETIC.NUM_TEST_IMAGES", "4",
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pth", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pth", weights_only=True)
    for k, v in r0["model"].items():  # BN statistics are per process on CPU (no SyncBN there)
        if not k.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(v, r1["model"][k]), k
    assert r0["sync_bn_layers"] == 0 and "SyncBN on CPU" in proc.stdout + proc.stderr
    assert "synthetic_test" in r0["history"][3] and r1["history"] == {}  # gathered on rank 0


def test_bad_config_and_missing_dataset_are_one_line_errors(tool, tmp_path):
    proc = tool(*train_net(tmp_path / "a", "DATASETS.TRAIN", "('voc_2007_trainval',)"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "VOC2007" in proc.stderr
    proc = tool(*train_net(tmp_path / "b", "MODEL.ROI_HEADS.NAME", "Nope"))
    assert proc.returncode == 2 and "MODEL.ROI_HEADS.NAME" in proc.stderr
