"""A run's trained weights are never lost: a resume never silently restarts, the final checkpoint
is saved before anything else can fail, a refused run writes nothing, Ctrl-C says how to resume."""

import json
import os
import signal
import subprocess
import sys

import pytest

from .conftest import ROOT
from .fake_data import snapshot, truncated_png, write_coco, write_image
from .test_engine import _wait_for
from .test_output_dir import run_main

FPN = "configs/quick/det_tiny_FPN.yaml"
PRETRAIN = "configs/quick/insloc_tiny_FPN.yaml"
TOOLS = {"pretrain_net": PRETRAIN, "train_net": FPN}


def iterations(out) -> list:
    return [json.loads(line)["iteration"] for line in (out / "metrics.jsonl").open()]


def stat(path):
    st = os.stat(path)
    return st.st_ino, st.st_mtime_ns


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_resume_without_a_valid_marker_continues_from_the_newest_checkpoint(tool, tmp_path, name):
    out = tmp_path / "run"
    run = [f"tools/{name}.py", "--config-file", TOOLS[name], "OUTPUT_DIR", out, "VIS_SAMPLES", 0]
    tool(*run, check=True)  # 4 iterations: model_0000001.pth (2 done) and model_final.pth
    first = stat(out / "model_0000001.pth")

    # a folder copied without its marker: the final checkpoint is the newest, nothing to do
    (out / "last_checkpoint").unlink()
    final = stat(out / "model_final.pth")
    proc = tool(*run, "--resume", check=True)
    assert f"resuming from the newest readable checkpoint, {out / 'model_final.pth'}" in proc.stdout
    assert "nothing to do" in proc.stdout
    assert stat(out / "model_final.pth") == final and stat(out / "model_0000001.pth") == first

    # a marker naming a checkpoint that is gone: resumed from the one before, which is kept
    (out / "model_final.pth").unlink()
    (out / "last_checkpoint").write_text("model_final.pth")
    proc = tool(*run, "--resume", check=True)
    assert "model_0000001.pth: 2 iterations done" in proc.stdout
    assert stat(out / "model_0000001.pth") == first
    assert iterations(out) == [1, 2, 3, 4]  # the resumed rows replace those after iteration 2


def test_unreadable_checkpoints_are_skipped_and_never_restart_the_run(tool, tmp_path):
    out = tmp_path / "run"
    run = ["tools/pretrain_net.py", "--config-file", PRETRAIN, "OUTPUT_DIR", out, "VIS_SAMPLES", 0]
    tool(*run, check=True)
    (out / "model_final.pth").write_bytes(b"PK\x03\x04 cut short")  # killed while copied
    proc = tool(*run, "--resume", check=True)
    assert "skipping an unreadable checkpoint" in proc.stdout
    assert "model_0000001.pth: 2 iterations done" in proc.stdout

    for name in ("model_0000001.pth", "model_final.pth"):
        (out / name).write_text("")
    before = snapshot(out)
    proc = tool(*run, "--resume")
    assert proc.returncode == 2 and "none of the 2 checkpoints" in proc.stderr
    assert "Traceback" not in proc.stderr and snapshot(out) == before


def _json_test_set(root, fault):
    """A COCO set of 6 images (to train and test on), one of them at ``fault``: absent on disk,
    not an image, of another size than its annotation, or with pixel data cut short (its header
    reads)."""
    json_file = write_coco(str(root), n=6)
    bad = root / "images" / "1.png"
    if fault == "missing":
        bad.unlink()
    elif fault == "not an image":
        bad.write_text("hello")
    elif fault == "other size":
        write_image(bad, 50, 80)
    else:
        truncated_png(bad)
    return json_file, bad


@pytest.mark.parametrize("fault", ["missing", "not an image", "other size"])
def test_a_test_image_that_cannot_be_run_stops_the_run_before_training(tmp_path, capsys, fault):
    json_file, bad = _json_test_set(tmp_path / "data", fault)
    out = tmp_path / "run"
    code, _, stderr = run_main(
        capsys, "train_net", "--config-file", FPN, "OUTPUT_DIR", out,
        "MODEL.ROI_HEADS.NUM_CLASSES", 1, "MODEL.MASK_ON", False,
        "DATASETS.TRAIN", f"('{json_file}',)", "DATASETS.TEST", f"('{json_file}',)",
    )  # fmt: skip
    assert code == 2 and "Traceback" not in stderr
    error = stderr.strip().splitlines()[-1]
    assert error.startswith("error: test set") and str(bad) in error
    assert not out.exists()  # nothing trained, nothing written


def test_the_final_checkpoint_is_saved_before_the_final_evaluation(tool, tmp_path):
    json_file, bad = _json_test_set(tmp_path / "data", "pixel data cut short")
    out = tmp_path / "run"
    proc = tool(
        "tools/train_net.py", "--config-file", FPN, "OUTPUT_DIR", out,
        "MODEL.ROI_HEADS.NUM_CLASSES", 1, "MODEL.MASK_ON", False,
        "DATASETS.TRAIN", f"('{json_file}',)", "DATASETS.TEST", f"('{json_file}',)",
    )  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    error = proc.stderr.strip().splitlines()[-1]
    assert (
        error.startswith("error: cannot evaluate on an unreadable test image") and str(bad) in error
    )
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["iteration"] == 4
    assert error in (out / "log.txt").read_text()  # the log says how the run ended


def test_a_refused_resume_writes_nothing(tool, tmp_path):
    out = tmp_path / "run"
    tool("tools/pretrain_net.py", "--config-file", PRETRAIN, "OUTPUT_DIR", out, check=True)
    before = snapshot(out)
    proc = tool(
        "tools/pretrain_net.py", "--config-file", "configs/quick/insloc_tiny_C4.yaml", "--resume",
        "OUTPUT_DIR", out,
    )  # fmt: skip
    assert proc.returncode == 2 and "MODEL.BACKBONE.NAME" in proc.stderr
    assert snapshot(out) == before  # config.yaml, log.txt and metrics.jsonl included


def test_ctrl_c_is_one_line_with_the_command_to_resume(tmp_path):
    out = tmp_path / "run"
    # The tool starts with SIGINT at its default, as from a terminal, however pytest was started:
    # a shell without job control starts background commands with SIGINT ignored, and Python
    # then never raises KeyboardInterrupt.
    sigint_default = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
    )
    cmd = [
        sys.executable,
        "-c",
        sigint_default,
        "tools/pretrain_net.py",
        "--config-file",
        PRETRAIN,
        "OUTPUT_DIR",
        str(out),
    ]
    cmd += ["SOLVER.MAX_ITER", "1000", "DATALOADER.NUM_WORKERS", "2", "VIS_SAMPLES", "0"]
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONUNBUFFERED="1")
    with open(tmp_path / "stdout.txt", "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        _wait_for(out / "last_checkpoint", proc, timeout=300)
        os.killpg(proc.pid, signal.SIGINT)  # as a terminal sends it: the trainer and its workers
        _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted at iteration ") and " of 1000; last checkpoint: " in last
    named = last.split("last checkpoint: ")[1].split(";")[0]  # the one --resume would pick
    assert os.path.dirname(named) == str(out) and os.path.isfile(named)
    resume = last.split("resume with: ")[1]
    assert resume.startswith("python tools/pretrain_net.py --resume --config-file")
    assert f"OUTPUT_DIR {out}" in resume and last in (out / "log.txt").read_text()
