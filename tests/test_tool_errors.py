"""Bad input ends every tool with one line naming the file, key or value, and exit status 2."""

import json
import os

import pytest
import torch

from insloc.config import load_config
from insloc.utils.file_io import atomic_save

from .conftest import ROOT
from .fake_data import write_coco
from .test_linear_eval import _save_pretext_checkpoint, _write_folder_tree
from .test_output_dir import error_lines, run_main, tool_main

FPN = "configs/quick/det_tiny_FPN.yaml"
PRETRAIN = "configs/quick/insloc_tiny_FPN.yaml"
DENSE = "configs/quick/dense_introspection_tiny.yaml"
DENSE_EVAL = "configs/quick/dense_eval_tiny.yaml"


def one_error(stderr: str) -> str:
    """The error line, checked to be the only one and the last line, without a traceback."""
    assert "Traceback" not in stderr, stderr
    errors = error_lines(stderr)
    assert errors == [stderr.strip().splitlines()[-1]], stderr
    return errors[0]


def test_too_few_classes_for_the_training_set_is_refused_at_the_start(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--config-file", FPN, "OUTPUT_DIR", out, "MODEL.ROI_HEADS.NUM_CLASSES", 3]
    code, _, stderr = run_main(capsys, "train_net", *argv)
    assert code == 2
    error = one_error(stderr)
    assert "MODEL.ROI_HEADS.NUM_CLASSES = 3" in error and "synthetic_train has 5" in error
    assert not out.exists()


@pytest.mark.parametrize("case", ["missing base", "cycle", "list", "empty"])
def test_a_broken_recipe_is_one_line_naming_the_file(tmp_path, capsys, case):
    recipe = tmp_path / "recipe.yaml"
    named = recipe
    if case == "missing base":
        recipe.write_text("_BASE_: nope.yaml\n")
        expected = "its _BASE_ 'nope.yaml' does not exist"
    elif case == "cycle":
        (tmp_path / "other.yaml").write_text("_BASE_: recipe.yaml\nSEED: 1\n")
        recipe.write_text("_BASE_: other.yaml\n")
        expected = "cycle"
    elif case == "list":
        recipe.write_text("- SEED\n- 3\n")
        expected = "is a list, not a mapping"
    else:
        recipe.write_text("# nothing yet\n")
        expected = "is empty"
    argv = ["--config-file", recipe, "OUTPUT_DIR", tmp_path / "out"]
    code, _, stderr = run_main(capsys, "pretrain_net", *argv)
    assert code == 2
    error = one_error(stderr)
    assert str(named) in error and expected in error


@pytest.mark.parametrize("name", ["pretrain_net", "train_dense", "train_net"])
def test_a_source_of_unreadable_images_is_one_line_naming_it(tmp_path, capsys, name):
    folder = tmp_path / "images" / "a"
    folder.mkdir(parents=True)
    for i in range(40):  # more than a batch
        (folder / f"{i}.jpg").write_text("not an image")
    if name == "pretrain_net":
        opts = ["--config-file", PRETRAIN, "DATASETS.PRETRAIN", tmp_path / "images"]
        expected = f"DATASETS.PRETRAIN '{tmp_path / 'images'}'"
    elif name == "train_dense":
        opts = ["--config-file", DENSE, "DATASETS.DENSE_TRAIN", tmp_path / "images"]
        expected = f"DATASETS.DENSE_TRAIN '{tmp_path / 'images'}'"
    else:  # a COCO json read against a wrong image root: every image is another file
        json_file = write_coco(str(tmp_path / "data"), n=6)
        for i in range(6):
            (tmp_path / "data" / "images" / f"{i}.png").write_text("not an image")
        opts = ["--config-file", FPN, "DATASETS.TRAIN", f"('{json_file}',)"]
        opts += ["MODEL.ROI_HEADS.NUM_CLASSES", 1, "MODEL.MASK_ON", False]
        expected = f"DATASETS.TRAIN {json_file}"
    code, _, stderr = run_main(capsys, name, *opts, "OUTPUT_DIR", tmp_path / "out")
    assert code == 2
    error = one_error(stderr)
    assert expected in error and "can be read" in error and "not a recognised image" in error
    assert not (tmp_path / "out").exists()


def test_a_coco_bbox_that_is_not_numbers_names_the_file_and_annotation(tmp_path, capsys):
    json_file = write_coco(str(tmp_path / "data"), n=6, bbox=["a", 1, 2, 3])
    code, _, stderr = run_main(
        capsys, "train_net", "--config-file", FPN, "OUTPUT_DIR", tmp_path / "out",
        "DATASETS.TRAIN", f"('{json_file}',)", "MODEL.ROI_HEADS.NUM_CLASSES", 1,
    )  # fmt: skip
    assert code == 2
    error = one_error(stderr)
    assert json_file in error and "annotation 100" in error and "['a', 1, 2, 3]" in error


def test_one_bad_image_in_a_linear_eval_class_folder_is_skipped_and_counted(tmp_path, capsys):
    _write_folder_tree(tmp_path / "data", per_class=4, side=36)
    bad = tmp_path / "data" / "train" / "a" / "broken.png"
    bad.write_text("not an image")
    out = tmp_path / "out"
    args = [
        "--data",
        str(tmp_path / "data"),
        "--random-init",
        "configs/quick/rotnet_NIN4_tiny.yaml",
    ]
    args += ["--resize", "32", "--crop", "32", "--output", str(out)]
    assert tool_main("linear_eval")(args) == 0
    stdout = capsys.readouterr().out
    assert f"1 train, 0 test (first: {bad})" in stdout
    meta = json.loads((out / "results.json").read_text())["meta"]
    assert meta["skipped_images"] == {"train": [str(bad)], "test": []}


# ---------------------------------------------------------------------------- weight files
class Unsafe:
    """In a pickle, a class to import: refused, and never "retry with weights_only=False"."""


def _unreadable(tmp_path, kind):
    """A weights file of ``kind`` and the words its error must use."""
    path = tmp_path / f"{kind.replace(' ', '_')}.pth"
    if kind == "empty":
        path.write_bytes(b"")
        return path, "is empty (0 bytes)"
    if kind == "text":
        path.write_text("see https://example.com for the weights\n")
        return path, "is a text file"
    if kind == "folder":
        path.mkdir()
        return path, "is a folder"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": Unsafe()}, path)
    return path, "a weights-only load refuses"


def _reader_args(reader, path, tmp_path):
    out = str(tmp_path / "out")
    return {
        "train_net": ["--config-file", FPN, "MODEL.WEIGHTS", path, "OUTPUT_DIR", out],
        "eval_matching": ["--config-file", os.path.join(ROOT, DENSE_EVAL), "MODEL.WEIGHTS", path,
                          "OUTPUT_DIR", out],
        "linear_eval": ["--data", str(tmp_path), "--checkpoint", str(path)],
        "convert_checkpoint": [str(path), out + ".pth", "--to", "torchvision"],
    }[reader]  # fmt: skip


@pytest.mark.parametrize("kind", ["empty", "text", "folder", "unsafe pickle"])
@pytest.mark.parametrize(
    "reader", ["train_net", "eval_matching", "linear_eval", "convert_checkpoint"]
)
def test_an_unreadable_weights_file_says_what_it_is_once(tmp_path, capsys, reader, kind):
    path, words = _unreadable(tmp_path, kind)
    code, stdout, stderr = run_main(capsys, reader, *_reader_args(reader, path, tmp_path))
    assert code == 2
    error = one_error(stderr)
    assert str(path) in error and words in error
    assert (stdout + stderr).count(words) == 1  # printed once
    assert "weights_only" not in stdout + stderr and "Re-running" not in stdout + stderr


def _checkpoint(tmp_path, task):
    """A checkpoint as insloc's trainers save them, of a detector, a dense model or RotNet."""
    path = tmp_path / f"{task}.pth"
    if task == "RotNet":
        _save_pretext_checkpoint(path, "configs/quick/rotnet_NIN4_tiny.yaml")
        return path
    if task == "detection":
        from insloc.modeling import build_model

        cfg, arch = load_config(os.path.join(ROOT, FPN)), "GeneralizedRCNN"
        model = build_model(cfg)
    else:
        from dense_match.model import DenseModel

        cfg, arch = load_config(os.path.join(ROOT, DENSE)), "Dense"
        model = DenseModel.from_config(cfg)
    atomic_save({"model": model.state_dict(), "config": cfg.dump(), "meta_arch": arch}, str(path))
    return path


@pytest.mark.parametrize(
    "reader, task, words",
    [
        ("linear_eval", "detection", "is a detection (fine-tuning) checkpoint"),
        # convert_checkpoint takes a detector (--to torchvision writes its trunk), not a dense model
        ("convert_checkpoint", "dense", "is a dense matching checkpoint"),
        ("eval_matching", "detection", "is a detection (fine-tuning) checkpoint"),
        ("train_net", "dense", "is a dense matching checkpoint"),
        ("train_net", "RotNet", "is a RotNet pretext checkpoint"),
    ],
)
def test_a_checkpoint_of_another_task_is_named_as_what_it_is(tmp_path, capsys, reader, task, words):
    path = _checkpoint(tmp_path, task)
    code, stdout, stderr = run_main(capsys, reader, *_reader_args(reader, path, tmp_path))
    assert code == 2
    error = one_error(stderr)
    assert str(path) in error and words in error
    assert "pretext trunk" not in error and "(insloc fine-tuning)" not in error


def test_a_detection_recipe_is_refused_by_the_dense_tools(tmp_path, capsys):
    code, _, stderr = run_main(
        capsys, "train_dense", "--config-file", FPN, "OUTPUT_DIR", tmp_path / "out"
    )
    assert code == 2
    error = one_error(stderr)
    assert f"{FPN} is a detection config" in error and "'Dense'" in error
    assert not (tmp_path / "out").exists()
    code, _, stderr = run_main(capsys, "eval_matching", "--config-file", os.path.join(ROOT, FPN))
    assert code == 2 and "is a detection config" in one_error(stderr)
