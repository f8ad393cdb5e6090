"""The Makefile's housekeeping: `make clean-demo` removes what `make demo` writes, and only that."""

import shutil
import subprocess

import pytest

from .conftest import ROOT


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_clean_demo_removes_demo_outputs_and_nothing_else(tmp_path):
    shutil.copy(f"{ROOT}/Makefile", tmp_path / "Makefile")
    (tmp_path / "setup.py").write_text("")  # the install rule's prerequisite, for make -n
    # where the demo writes, as make would run it (-n: print the commands, run nothing)
    dry = subprocess.run(
        ["make", "-n", "-C", str(tmp_path), "demo"], capture_output=True, text=True, check=True
    )
    assert "--output-dir output/demo_$(date +%Y%m%d_%H%M%S)" in dry.stdout

    out = tmp_path / "output"
    for run in ("demo_20260101_120000", "demo_20260102_080000"):
        (out / run / "tensorboard").mkdir(parents=True)
        (out / run / "model_final.pth").write_bytes(b"weights")
    kept = [out / "keep" / "model_final.pth", out / "insloc_fpn.pth", tmp_path / "demo_notes.txt"]
    for path in kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("mine")

    subprocess.run(["make", "-C", str(tmp_path), "clean-demo"], capture_output=True, check=True)
    assert sorted(p.name for p in out.iterdir()) == ["insloc_fpn.pth", "keep"]
    assert all(path.read_text() == "mine" for path in kept)
    assert not (tmp_path / ".venv").exists(), "clean-demo must not install anything"
