"""CIFAR-10's python batches and STL-10's binary files as pretraining sources (DATASETS.PRETRAIN),
on fixtures written in the published formats."""

import json
import os
import pickle

import numpy as np
import pytest

from insloc.config import load_config
from insloc.data.build import build_image_source
from insloc.engine.pretrain import PretrainTrainer


def write_cifar_batches(root, per_batch=4, seed=0):
    """cifar-10-batches-py: five protocol-2 pickles of dicts with bytes keys, b"data" N x 3072
    uint8 (planes R, G, B of 32 x 32) and b"labels"; returns the images N x 32 x 32 x 3."""
    os.makedirs(root)
    rng = np.random.default_rng(seed)
    images = []
    for i in range(1, 6):
        hwc = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        entry = {
            b"batch_label": f"training batch {i} of 5".encode(),
            b"labels": rng.integers(0, 10, per_batch).tolist(),
            b"data": hwc.transpose(0, 3, 1, 2).reshape(per_batch, 3072),
            b"filenames": [f"{j}.png".encode() for j in range(per_batch)],
        }
        with open(os.path.join(root, f"data_batch_{i}"), "wb") as f:
            pickle.dump(entry, f, protocol=2)
        images.append(hwc)
    return np.concatenate(images)


def write_stl_bin(path, n, seed=0):
    """STL-10 binary images: per image 3 planes of 96 x 96 bytes, column-major; returns HWC."""
    hwc = np.random.default_rng(seed).integers(0, 256, (n, 96, 96, 3), dtype=np.uint8)
    hwc.transpose(0, 3, 2, 1).tofile(path)
    return hwc


def test_cifar10_batches_are_a_pretraining_source(tmp_path):
    root = str(tmp_path / "cifar-10-batches-py")
    images = write_cifar_batches(root)
    source = build_image_source(root)
    assert len(source) == 20 and source.size(7) == (32, 32)
    for i in (0, 5, 19):  # batch 1, batch 2 and the last image of batch 5
        np.testing.assert_array_equal(source.load(i), images[i])
    assert source.load(3, reduce=2).shape == (16, 16, 3)
    # a data-loader worker receives the path, not the arrays, and reads the same images
    copy = pickle.loads(pickle.dumps(source))
    assert copy._images is None
    np.testing.assert_array_equal(copy.load(11), images[11])


def test_cifar10_missing_batch_and_foreign_pickle_are_one_line_errors(tmp_path):
    root = tmp_path / "cifar-10-batches-py"
    write_cifar_batches(str(root))
    os.remove(root / "data_batch_3")
    with pytest.raises(FileNotFoundError) as e:
        build_image_source(str(root))
    message = str(e.value)
    assert "data_batch_3 does not exist" in message and "data_batch_1 .. data_batch_5" in message
    assert "\n" not in message

    class Exploit:
        def __reduce__(self):
            return (os.mkdir, (str(tmp_path / "should_not_exist"),))

    with open(root / "data_batch_3", "wb") as f:
        pickle.dump({b"data": Exploit()}, f, protocol=2)
    with pytest.raises(ValueError, match="refusing to load"):
        build_image_source(str(root))
    assert not (tmp_path / "should_not_exist").exists()


def test_stl10_binary_files_are_a_pretraining_source(tmp_path):
    root = tmp_path / "stl10_binary"
    root.mkdir()
    unlabelled = write_stl_bin(root / "unlabeled_X.bin", 3, seed=1)
    train = write_stl_bin(root / "train_X.bin", 2, seed=2)
    source = build_image_source(str(root))  # the unlabelled images, then the train images
    assert len(source) == 5 and source.size(0) == (96, 96)
    np.testing.assert_array_equal(source.load(1), unlabelled[1])
    np.testing.assert_array_equal(source.load(4), train[1])
    assert source.name(4).endswith("train_X.bin[1]")
    only = build_image_source(str(root / "unlabeled_X.bin"))
    assert len(only) == 3
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(only)).load(2), unlabelled[2])
    with open(root / "unlabeled_X.bin", "ab") as f:
        f.write(b"\0" * 10)  # a truncated or foreign file
    with pytest.raises(ValueError, match="unlabeled_X.bin: 82954 bytes, expected a multiple"):
        build_image_source(str(root))


def test_rotnet_cifar_recipe_pretrains_on_the_python_batches(tmp_path):
    # the real recipe, shrunk: NIN width 8, batch 4, two iterations through PretrainTrainer
    root = str(tmp_path / "cifar-10-batches-py")
    write_cifar_batches(root)
    opts = {
        "DATASETS.PRETRAIN": root,
        "MODEL.DEVICE": "cpu",
        "MODEL.NIN.WIDTH": 8,
        "SOLVER.IMS_PER_BATCH": 4,
        "SOLVER.MAX_ITER": 2,
        "SOLVER.STEPS": "(1,)",
        "SOLVER.CHECKPOINT_PERIOD": 2,
        "DATALOADER.NUM_WORKERS": 0,
        "LOG_PERIOD": 1,
        "OUTPUT_DIR": str(tmp_path / "run"),
    }
    cfg = load_config(
        "configs/pretrain/rotnet_NIN4_cifar10.yaml", [str(x) for kv in opts.items() for x in kv]
    )
    os.makedirs(cfg.OUTPUT_DIR)
    PretrainTrainer(cfg).train()
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["iteration"] for r in records] == [1, 2]
    assert all(np.isfinite(r["loss_cls"]) and r["num_bad_images"] == 0 for r in records)
    assert (tmp_path / "run" / "model_final.pth").exists()
