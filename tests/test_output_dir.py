"""Every tool's output folder: outputs stay inside it, nothing the user made is overwritten (the
config file included), and a folder that cannot take the outputs is refused before any work."""

import json
import logging
import os

import pytest

from .conftest import ROOT, load_script
from .fake_data import snapshot, write_coco, write_image

FPN = "configs/quick/det_tiny_FPN.yaml"
PRETRAIN = "configs/quick/insloc_tiny_FPN.yaml"
DENSE = "configs/quick/dense_introspection_tiny.yaml"
DENSE_EVAL = "configs/quick/dense_eval_tiny.yaml"
TRAINING_TOOLS = ("train_net", "pretrain_net", "train_dense")


def tool_main(name):
    """The ``main(argv)`` of tools/<name>.py, for the tools that are called in this process."""
    return load_script(f"tools/{name}.py").main


def run_main(capsys, name, *argv):
    """tools/<name>.py's ``main`` called in this process (for runs that stop before training):
    (exit status, stdout, stderr). The logging set-up of a training tool is undone afterwards."""
    logger = logging.getLogger("insloc")
    capsys.readouterr()
    try:
        code = tool_main(name)([str(a) for a in argv])
    finally:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        logger.propagate, logger.level = True, logging.NOTSET
    return (code, *capsys.readouterr())


def error_lines(stderr: str) -> list:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_a_dataset_named_by_its_path_is_evaluated_into_one_folder_under_inference(tool, tmp_path):
    data = tmp_path / "data"
    json_file = write_coco(str(data))
    before = snapshot(data)
    names = [
        f"{json_file}:{data}",  # json:image_root, absolute
        json_file,  # json alone, absolute: images relative to its folder
        os.path.relpath(json_file, ROOT),  # relative to the working directory
    ]
    out = tmp_path / "out"
    proc = tool(
        "tools/train_net.py", "--config-file", FPN, "--eval-only", "OUTPUT_DIR", out,
        "MODEL.ROI_HEADS.NUM_CLASSES", 1, "DATASETS.TEST", repr(tuple(names)),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert snapshot(data) == before  # nothing written beside the user's annotations
    assert sorted(os.listdir(tmp_path)) == ["data", "out"]
    folders = sorted(os.listdir(out / "inference"))
    assert len(folders) == 3 and all(f.startswith("ann_") for f in folders), folders
    for folder in folders:
        assert os.listdir(out / "inference" / folder) == ["coco_instances_results.json"]
        assert f"raw detections in {out / 'inference' / folder}" in proc.stdout
    summary = proc.stdout[proc.stdout.rindex("outputs:") :]
    shown = [line.split()[-1] for line in summary.splitlines() if "detections" in line]
    assert sorted(shown) == sorted(
        str(out / "inference" / f / "coco_instances_results.json") for f in folders
    )
    assert set(json.loads((out / "results.json").read_text())) == set(names)


def _recipe(path, base=FPN):
    """A recipe of the user's: a comment and a _BASE_, which the frozen config would lose."""
    text = f"# my experiment\n_BASE_: {os.path.join(ROOT, base)!r}\nSEED: 3\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def test_a_run_refuses_a_folder_holding_files_it_would_write(tool, tmp_path):
    exp = tmp_path / "exp1"
    _recipe(exp / "config.yaml")
    before = snapshot(exp)
    proc = tool("tools/train_net.py", "--config-file", exp / "config.yaml", "OUTPUT_DIR", exp)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert error_lines(proc.stderr) == [proc.stderr.strip().splitlines()[-1]]
    assert "config.yaml, the --config-file itself" in proc.stderr
    assert snapshot(exp) == before

    other = tmp_path / "exp2"
    other.mkdir()
    (other / "results.json").write_text('{"mine": 1}')
    before = snapshot(other)
    proc = tool("tools/train_net.py", "--config-file", FPN, "OUTPUT_DIR", other)
    assert proc.returncode == 2 and "already holds results.json" in proc.stderr
    assert snapshot(other) == before  # no log.txt, no config.yaml, no metrics


def test_the_config_file_is_never_overwritten_even_by_a_resume(tool, tmp_path):
    out = tmp_path / "run"
    tool("tools/train_net.py", "--config-file", FPN, "OUTPUT_DIR", out, check=True)
    frozen = out / "config.yaml"
    text = frozen.read_text()
    # detectron2's habit: continue a run from its own saved config, here with a longer schedule
    proc = tool(
        "tools/train_net.py", "--config-file", frozen, "--resume", "OUTPUT_DIR", out,
        "SOLVER.MAX_ITER", 6, check=True,
    )  # fmt: skip
    assert frozen.read_text() == text
    assert "is the --config-file: left as it is" in proc.stdout


def test_eval_only_and_eval_matching_never_replace_earlier_results(tool, tmp_path, capsys):
    out = tmp_path / "eval"
    opts = ["--config-file", FPN, "--eval-only", "OUTPUT_DIR", out]
    opts += ["DATASETS.SYNTHETIC.NUM_TEST_IMAGES", 2]
    tool("tools/train_net.py", *opts, check=True)
    before = snapshot(out)
    proc = tool("tools/train_net.py", *opts)
    assert proc.returncode == 2 and "already holds" in proc.stderr
    assert snapshot(out) == before

    eval_matching = tool_main("eval_matching")
    args = ["--config-file", os.path.join(ROOT, DENSE_EVAL), "OUTPUT_DIR", str(tmp_path / "pck")]
    assert eval_matching(args) == 0
    before = snapshot(tmp_path / "pck")
    capsys.readouterr()
    assert eval_matching(args) == 2
    err = capsys.readouterr().err
    assert "pck.json" in err and len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path / "pck") == before


def _invocation(name, out, tmp_path):
    """Arguments of tool ``name`` writing to ``out``; inputs that do not exist, so that only a
    check made before any work can name ``out``."""
    missing = str(tmp_path / "missing")
    return {
        "train_net": ["--config-file", FPN, "OUTPUT_DIR", out],
        "pretrain_net": ["--config-file", PRETRAIN, "OUTPUT_DIR", out],
        "train_dense": ["--config-file", DENSE, "OUTPUT_DIR", out],
        "eval_matching": ["--config-file", os.path.join(ROOT, DENSE_EVAL), "OUTPUT_DIR", out],
        "visualize_matches": ["--config-file", os.path.join(ROOT, DENSE_EVAL), "OUTPUT_DIR", out],
        "linear_eval": ["--data", missing, "--checkpoint", missing + ".pth", "--output", out],
        "make_crops": [missing + ".json", out],
        "convert_checkpoint": [missing + ".pth", out, "--to", "torchvision"],
        "visualize_predictions": ["--config-file", os.path.join(ROOT, FPN), "--output", out],
        "visualize_pretrain_data": ["--config-file", os.path.join(ROOT, PRETRAIN), "--output", out],
    }[name]


@pytest.mark.parametrize("where", ["a file", "under a file"])
@pytest.mark.parametrize(
    "name",
    [
        *TRAINING_TOOLS,
        "eval_matching",
        "visualize_matches",
        "linear_eval",
        "make_crops",
        "convert_checkpoint",
        "visualize_predictions",
        "visualize_pretrain_data",
    ],
)
def test_every_tool_checks_its_output_before_any_work(tmp_path, capsys, name, where):
    existing = tmp_path / "taken.png"
    write_image(existing)
    out = str(existing if where == "a file" else existing / "sub")
    code, stdout, stderr = run_main(capsys, name, *_invocation(name, out, tmp_path))
    assert code == 2 and "Traceback" not in stderr
    assert error_lines(stderr) == [stderr.strip().splitlines()[-1]]
    assert str(existing) in error_lines(stderr)[0]
    assert "PCK" not in stdout and "train /" not in stdout  # no evaluation was run
    assert existing.read_bytes()[:4] == b"\x89PNG" and not os.path.exists(tmp_path / "missing")
