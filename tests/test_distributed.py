"""Two processes with gloo under torchrun on CPU: DDP, cross-process key shuffle, shared queues."""

import os
import socket
import subprocess
import sys

import torch

from .conftest import ROOT


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_under_torchrun(tmp_path):
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
        "tests/dist_worker.py",
        str(tmp_path),
        "SOLVER.MAX_ITER",
        "3",
        "SOLVER.IMS_PER_BATCH",
        "16",
        "DATALOADER.NUM_WORKERS",
        "1",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pth", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pth", weights_only=True)
    assert r0["world_size"] == r1["world_size"] == 2

    # Parameters of both encoders and every queue are identical on both ranks after training.
    for k, v in r0["model"].items():
        if k.startswith("queue") or not (k.endswith("running_mean") or k.endswith("running_var")):
            assert torch.equal(v, r1["model"][k]), k
    assert int(r0["model"]["queue_ptr"]) == 3 * 16 % 1024
    # Under DDP the key shuffle, not split BN, decorrelates the batch statistics.
    assert "SplitBatchNorm" not in r0["bn_types"]

    # The shuffle crosses ranks: each rank's keys come from both ranks' samples ...
    n = 8
    for r, state in enumerate((r0, r1)):
        owners = set((state["shuffled_ids"] // n).tolist())
        assert owners == {0, 1}, f"rank {r} only computed keys of ranks {owners}"
    # ... every sample is computed exactly once, and unshuffling restores the global order.
    assert sorted(torch.cat([r0["shuffled_ids"], r1["shuffled_ids"]]).tolist()) == list(range(16))
    assert torch.equal(r0["unshuffled_ids"], torch.arange(16).float())
    assert torch.equal(r1["unshuffled_ids"], torch.arange(16).float())

    # Rank 0 wrote the run's files; the checkpoint holds the same weights as rank 0's model.
    final = torch.load(tmp_path / "run" / "model_final.pth", weights_only=True)
    for k, v in r0["model"].items():
        assert torch.equal(v, final["model"][k]), k
