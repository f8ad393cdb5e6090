"""Data workers of a run end with it: a trainer killed alone (OOM killer, preemption, kill -9) must
not leave its forkserver, resource tracker or workers running."""

import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import ROOT


def _children_by_parent() -> dict:
    kids = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # ended while we looked
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def _descendants(pid: int) -> list:
    kids, found, todo = _children_by_parent(), [], [pid]
    while todo:
        for child in kids.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _running(pid: int) -> bool:
    """Exists and is not a zombie (an exited process not yet reaped by its new parent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="walks /proc")
def test_sigkilled_trainer_leaves_no_process_behind(tmp_path):
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "tools/pretrain_net.py",
        "--config-file",
        "configs/quick/insloc_tiny_FPN.yaml",
        "OUTPUT_DIR",
        str(out),
        "SOLVER.MAX_ITER",
        "100000",
        "DATALOADER.NUM_WORKERS",
        "2",
        "SOLVER.IMS_PER_BATCH",
        "8",
        "VIS_SAMPLES",
        "0",
    ]
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    helpers = []
    try:
        metrics, start = out / "metrics.jsonl", time.time()
        while not (metrics.exists() and metrics.read_text()):  # an iteration done: workers up
            assert proc.poll() is None, "the run ended before it trained"
            assert time.time() - start < 180, "the run did not start training"
            time.sleep(0.1)
        helpers = _descendants(proc.pid)
        # the forkserver, the resource tracker and the two workers (at least)
        assert len(helpers) >= 4, helpers
        os.kill(proc.pid, signal.SIGKILL)  # the trainer alone, not its process group
        proc.wait()
        deadline = time.time() + 15
        while any(map(_running, helpers)) and time.time() < deadline:
            time.sleep(0.2)
        assert not [p for p in helpers if _running(p)], "processes outlived the trainer"
    finally:
        for pid in [proc.pid, *helpers]:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
