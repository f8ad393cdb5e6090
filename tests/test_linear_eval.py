import json
import os
import pickle

import numpy as np
import pytest
import torch
import torchvision

from insloc.config import load_config
from insloc.data.classification import (
    FolderClassification,
    load_cifar10,
    load_classification_split,
    load_stl10,
    subset_per_class,
)
from insloc.evaluation import extract_features, fit_probe, load_trunk
from insloc.modeling import build_model
from insloc.utils.file_io import atomic_save
from insloc.utils.safe_pickle import restricted_load

from .conftest import load_script


def blobs(n_per_class, num_classes=4, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, (num_classes, dim))
    y = np.repeat(np.arange(num_classes), n_per_class)
    return (centres[y] + rng.normal(0, 1, (len(y), dim))).astype(np.float32), y


@pytest.mark.parametrize(
    "probe,backend",
    [("logreg", "sklearn"), ("logreg", "torch"), ("sgd", "sklearn"), ("mlp", "sklearn")],
)
def test_probe_separable_near_100_shuffled_at_chance(probe, backend):
    x, y = blobs(60)
    tx, ty = blobs(60, seed=0)
    tx = tx + np.random.default_rng(1).normal(0, 0.5, tx.shape).astype(np.float32)
    opts = dict(probe=probe, backend=backend, epochs=20, cs=(0.01, 1.0))
    result = fit_probe(x, y, tx, ty, **opts)
    assert result["accuracy"] >= 0.97
    # labels shuffled independently of the features, in training and test: chance (1 / 4)
    rng = np.random.default_rng(2)
    chance = fit_probe(x, rng.permutation(y), tx, rng.permutation(ty), **opts)
    assert abs(chance["accuracy"] - 0.25) < 0.1
    if probe == "logreg":
        assert result["C"] in (0.01, 1.0)


def _write_cifar(root, per_batch=3):
    """CIFAR-10's python format: Python-2-style dicts with bytes keys, data N x 3072 uint8 (planes
    R, G, B of 32 x 32), pickled with protocol 2."""
    os.makedirs(root)
    rng = np.random.default_rng(0)
    images, labels = [], []
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        hwc = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        batch_labels = rng.integers(0, 10, per_batch).tolist()
        data = hwc.transpose(0, 3, 1, 2).reshape(per_batch, 3072)
        entry = {
            b"batch_label": name.encode(),
            b"labels": batch_labels,
            b"data": data,
            b"filenames": [f"{i}.png".encode() for i in range(per_batch)],
        }
        with open(os.path.join(root, name), "wb") as f:
            pickle.dump(entry, f, protocol=2)
        images.append(hwc)
        labels += batch_labels
    with open(os.path.join(root, "batches.meta"), "wb") as f:
        pickle.dump({b"label_names": [f"class{i}".encode() for i in range(10)]}, f, protocol=2)
    return np.concatenate(images), np.array(labels)


class _Exploit:
    def __reduce__(self):
        return (os.mkdir, ("/nonexistent_should_not_run",))


def test_cifar10_reads_the_published_format_and_refuses_code(tmp_path):
    images, labels = _write_cifar(str(tmp_path / "cifar"))
    train = load_cifar10(str(tmp_path / "cifar"), "train")
    test = load_classification_split(str(tmp_path / "cifar"), "test")
    assert np.array_equal(train.images, images[:15]) and np.array_equal(train.labels, labels[:15])
    assert np.array_equal(test.images, images[15:]) and test.class_names[3] == "class3"
    evil = tmp_path / "evil.pkl"
    marker = tmp_path / "ran"

    class Exploit:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    evil.write_bytes(pickle.dumps({b"data": Exploit()}, protocol=2))
    with pytest.raises(ValueError, match=r"evil.pkl: refusing to load (posix|os)\.mkdir"):
        restricted_load(str(evil))
    assert not marker.exists()


def test_stl10_reads_the_published_binary_format(tmp_path):
    root = tmp_path / "stl10_binary"
    root.mkdir()
    rng = np.random.default_rng(0)
    hwc = rng.integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    # per image: 3 planes of 96 x 96 bytes, each plane column-major (MATLAB order)
    hwc.transpose(0, 3, 2, 1).tofile(root / "train_X.bin")
    np.array([1, 10, 4], np.uint8).tofile(root / "train_y.bin")
    (root / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    train = load_stl10(str(root), "train")
    assert np.array_equal(train.images, hwc) and train.labels.tolist() == [0, 9, 3]
    assert train.class_names[9] == "c9"
    with pytest.raises(FileNotFoundError, match="test_X.bin"):
        load_stl10(str(root), "test")


def _write_folder_tree(root, classes=("a", "b"), per_class=3, side=20):
    import cv2

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c in classes:
            folder = root / split / c
            folder.mkdir(parents=True)
            for i in range(per_class):
                image = rng.integers(0, 256, (side, side + 4, 3), dtype=np.uint8)
                cv2.imwrite(str(folder / f"{i}.png"), image)


def test_folder_tree_and_empty_class(tmp_path):
    _write_folder_tree(tmp_path)
    train = load_classification_split(str(tmp_path), "train")
    assert train.class_names == ["a", "b"] and train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert train.load(4).shape == (20, 24, 3)
    (tmp_path / "train" / "empty").mkdir()
    with pytest.raises(ValueError, match="class folder .*empty.* has no images"):
        FolderClassification(str(tmp_path / "train"))
    assert subset_per_class(np.array([0, 0, 0, 1, 1, 1]), 2, seed=0).tolist() in (
        [a + b for a in ([0, 1], [0, 2], [1, 2]) for b in ([3, 4], [3, 5], [4, 5])]
    )
    with pytest.raises(ValueError, match="class 1 has 3 examples"):
        subset_per_class(np.array([0, 0, 0, 0, 1, 1, 1]), 4)


def _save_pretext_checkpoint(path, config):
    cfg = load_config(config)
    torch.manual_seed(0)
    model = build_model(cfg)
    atomic_save(
        {
            "model": model.state_dict(),
            "config": cfg.dump(),
            "meta_arch": cfg.MODEL.META_ARCHITECTURE,
        },
        str(path),
    )
    return model


def test_trunks_load_from_every_kind_of_checkpoint(tmp_path):
    from insloc.data.classification import ArrayClassification

    model = _save_pretext_checkpoint(tmp_path / "rot.pth", "configs/quick/rotnet_NIN4_tiny.yaml")
    trunk = load_trunk(str(tmp_path / "rot.pth"))
    data = ArrayClassification(
        np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8),
        [0, 1, 0],
        ["x", "y"],
    )
    feats = extract_features(trunk, data, ["block2", "pre-logits"], grid=2)
    assert feats["block2"].shape == (3, 16 * 4) and feats["pre-logits"].shape == (3, 16 * 4)
    x = (
        torch.from_numpy(data.images).permute(0, 3, 1, 2).float() - model.pixel_mean
    ) / model.pixel_std
    with torch.no_grad():
        expected = model.eval().backbone.features(x, ["pre-logits"])["pre-logits"].mean(dim=(2, 3))
    assert np.allclose(
        extract_features(trunk, data, ["pre-logits"])["pre-logits"], expected.numpy(), atol=1e-5
    )
    with pytest.raises(ValueError, match="unknown layer 'res5'.*valid layers are block1, block2"):
        extract_features(trunk, data, ["res5"])

    tv = torchvision.models.resnet18().state_dict()
    torch.save(tv, tmp_path / "r18.pth")
    trunk = load_trunk(str(tmp_path / "r18.pth"))
    assert "torchvision ResNet-18" in trunk.description and trunk.tap_names[-1] == "pre-logits"
    deeper = {k: v for k, v in torchvision.models.resnet50().state_dict().items()}
    deeper["layer3.6.conv1.weight"] = deeper["layer3.5.conv1.weight"]
    torch.save(deeper, tmp_path / "odd.pth")
    with pytest.raises(
        ValueError, match=r"odd.pth: a torchvision ResNet with \(3, 4, 7, 3\) blocks"
    ):
        load_trunk(str(tmp_path / "odd.pth"))
    # a checkpoint whose weights are of another architecture than its config says
    ckpt = torch.load(tmp_path / "rot.pth", weights_only=True)
    ckpt["config"] = load_config(
        "configs/quick/rotnet_NIN4_tiny.yaml", ["MODEL.NIN.WIDTH", "24"]
    ).dump()
    torch.save(ckpt, tmp_path / "other.pth")
    with pytest.raises(ValueError, match=r"other.pth does not fit a RotNet trunk 'nin'.*block1"):
        load_trunk(str(tmp_path / "other.pth"))


@pytest.mark.parametrize(
    "config", ["configs/quick/moco_v2_tiny.yaml", "configs/quick/insloc_tiny_FPN.yaml"]
)
def test_moco_and_insloc_checkpoints_give_their_query_trunk(tmp_path, config):
    model = _save_pretext_checkpoint(tmp_path / "m.pth", config)
    trunk = load_trunk(str(tmp_path / "m.pth"))
    backbone = model.encoder_q.backbone
    backbone = getattr(backbone, "body", backbone)  # R-FPN: the ResNet is its body
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = backbone.eval()(x)
        expected = expected["p5"] if "p5" in expected else expected["res5"]
        got = trunk.module.features(x, ["block4"])["block4"]
    assert torch.allclose(got, expected, atol=1e-5)


def _tool(name):
    return load_script(f"tools/{name}.py")


def test_linear_eval_tool_writes_table_json_and_plot(tmp_path, capsys):
    _write_folder_tree(tmp_path / "data", per_class=4, side=36)
    _save_pretext_checkpoint(tmp_path / "rot.pth", "configs/quick/rotnet_NIN4_tiny.yaml")
    tool = _tool("linear_eval")
    out = tmp_path / "out"
    args = [
        "--data",
        str(tmp_path / "data"),
        "--checkpoint",
        f"rot={tmp_path / 'rot.pth'}",
        "--random-init",
        "rand=configs/quick/rotnet_NIN4_tiny.yaml",
        "--layers",
        "all",
        "--resize",
        "32",
        "--crop",
        "32",
        "--probe",
        "sgd",
        "--output",
        str(out),
    ]
    assert tool.main(args) == 0
    printed = capsys.readouterr().out
    assert "layer" in printed and "pre-logits" in printed and "rand" in printed
    results = json.loads((out / "results.json").read_text())["results"]
    assert list(results["rot"]) == ["block1", "block2", "block3", "block4", "pre-logits"]
    assert all(0 <= r["accuracy"] <= 1 for r in results["rand"].values())
    assert (out / "accuracy_by_layer.png").read_bytes()[:4] == b"\x89PNG"
    assert tool.main(args) == 2  # never overwrites
    assert tool.main(args[:4] + ["--layers", "block7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: unknown layer 'block7'") and len(err) == 2
    balanced = ["--layers", "pre-logits", "--resize", "32", "--crop", "32", "--balanced"]
    assert tool.main(args[:4] + balanced) == 0
    assert "logreg probe, test mean class accuracy (%)" in capsys.readouterr().out


def test_make_crops_from_a_coco_json(tmp_path, capsys):
    import cv2

    images, anns = [], []
    for i in range(8):
        cv2.imwrite(str(tmp_path / f"{i}.jpg"), np.full((80, 100, 3), 30 * i, np.uint8))
        images.append({"id": i, "file_name": f"{i}.jpg", "height": 80, "width": 100})
        anns.append(
            {
                "id": 10 + i,
                "image_id": i,
                "category_id": 1 + i % 2,
                "bbox": [10, 10, 40, 30],
                "iscrowd": 0,
            }
        )
        anns.append(
            {"id": 30 + i, "image_id": i, "category_id": 1, "bbox": [0, 0, 5, 5], "iscrowd": 0}
        )
    cats = [{"id": 1, "name": "traffic light"}, {"id": 2, "name": "cat"}]
    (tmp_path / "ann.json").write_text(
        json.dumps({"images": images, "annotations": anns, "categories": cats})
    )
    tool = _tool("make_crops")
    out = tmp_path / "crops"
    assert (
        tool.main(
            [
                str(tmp_path / "ann.json"),
                str(out),
                "--val-fraction",
                "0.5",
                "--min-per-class",
                "1",
                "--min-size",
                "16",
            ]
        )
        == 0
    )
    train = FolderClassification(str(out / "train"))
    val = FolderClassification(str(out / "val"))
    assert train.class_names == ["cat", "traffic_light"] and len(train) + len(val) == 8
    assert train.load(0).shape == (36, 48, 3)  # the box plus 10% context on each side
    assert tool.main([str(tmp_path / "ann.json"), str(out)]) == 2
