"""Detection transforms, mapper, samplers and loaders: exact sizes, flips, determinism."""

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from insloc.config import get_cfg
from insloc.config.config import ConfigError, load_config
from insloc.data.detection import (
    DetectionMapper,
    DetectionTrainDataset,
    GroupedBatchSampler,
    ResizeFlip,
    build_detection_test_loader,
    build_detection_train_loader,
    get_detection_dataset,
    inference_shard,
    resize_shape,
)

from .test_detection_datasets import write_coco


@pytest.mark.parametrize(
    "hw, short, max_size, expected",
    [
        ((480, 640), 800, 1333, (800, 1067)),  # 640 * 800 / 480 = 1066.67
        ((500, 375), 800, 1333, (1067, 800)),  # portrait
        ((300, 1000), 800, 1333, (400, 1333)),  # 2666.7 > 1333: 800 * 1333 / 2666.7 = 399.9
        ((4, 6), 3, 100, (3, 5)),  # 4.5 rounds half up, as int(x + 0.5)
        ((375, 500), 0, 1333, (375, 500)),  # 0 keeps the size
    ],
)
def test_resize_shape_follows_detectron2(hw, short, max_size, expected):
    assert resize_shape(*hw, short, max_size) == expected


def test_resize_uses_pil_bilinear():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    out = ResizeFlip(30, 50, 45, 75).apply_image(image)
    expected = np.asarray(Image.fromarray(image).resize((75, 45), Image.BILINEAR))
    assert np.array_equal(out, expected)
    assert not np.array_equal(out, cv2.resize(image, (75, 45), interpolation=cv2.INTER_LINEAR))


@pytest.mark.parametrize("flip", [False, True])
def test_boxes_and_polygons_move_with_the_pixels(flip):
    h, w = 40, 60
    image = np.zeros((h, w, 3), np.uint8)
    image[8:20, 5:25] = 255  # an object at box [5, 8, 25, 20]
    plan = ResizeFlip(h, w, 80, 120, flip=flip)
    out = plan.apply_image(image)
    box = plan.apply_boxes([[5, 8, 25, 20]])[0]
    x1, y1, x2, y2 = box.round().astype(int)
    assert (x1, y1, x2, y2) == ((70, 16, 110, 40) if flip else (10, 16, 50, 40))
    inside = out[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1]
    assert inside.min() == 255
    ring = out.copy()
    ring[y1 - 1 : y2 + 1, x1 - 1 : x2 + 1] = 0
    assert ring.max() == 0  # nothing bright outside the box
    polygon = plan.apply_polygon([5, 8, 25, 8, 25, 20, 5, 20])
    assert polygon.dtype == np.float32
    drawn = np.zeros((80, 120), np.uint8)
    cv2.fillPoly(drawn, [polygon.reshape(-1, 2).round().astype(np.int32)], 1)
    bright = out[:, :, 0] > 127
    iou = (bright & (drawn > 0)).sum() / (bright | (drawn > 0)).sum()
    assert iou > 0.9


def _coco_cfg(tmp_path, workers=0):
    json_file, images_dir, _ = write_coco(str(tmp_path))
    cfg = get_cfg()
    cfg.DATASETS.TRAIN = (f"{json_file}:{images_dir}",)
    cfg.INPUT.MIN_SIZE_TRAIN = (24, 48)
    cfg.INPUT.MAX_SIZE_TRAIN = 100
    cfg.SOLVER.IMS_PER_BATCH = 1
    cfg.DATALOADER.NUM_WORKERS = workers
    return cfg


def test_training_sample_contract(tmp_path):
    cfg = _coco_cfg(tmp_path)
    loader = build_detection_train_loader(cfg)
    ds = loader.dataset
    assert len(ds) == 1  # the image without annotations is filtered out
    flips = set()
    for epoch in range(12):
        s = ds[(epoch, 0)]
        assert s["image"].dtype == torch.uint8 and s["image"].shape[0] == 3
        assert (s["height"], s["width"], s["image_id"]) == (48, 64, 7) and s["bad_files"] == []
        hh, ww = s["image"].shape[1:]
        assert min(hh, ww) in (24, 48)
        inst = s["instances"]
        # crowd dropped: the dog polygon and the clipped bottle remain
        assert inst["classes"].tolist() == [1, 2] and inst["boxes"].dtype == torch.float32
        scale = ww / 64
        dog = inst["boxes"][0].numpy() / scale
        flipped = dog[0] > 32
        flips.add(bool(flipped))
        expected = [64 - 30, 4, 64 - 10, 20] if flipped else [10, 4, 30, 20]
        np.testing.assert_allclose(dog, expected, atol=1e-4)
        assert len(inst["masks"]) == 2 and all(p.dtype == np.float32 for p in inst["masks"][0])
        np.testing.assert_allclose(
            inst["masks"][0][0].reshape(-1, 2).min(0), inst["boxes"][0, :2].numpy(), atol=1e-4
        )
        assert float(inst["boxes"][:, 2].max()) <= ww  # clipped to the resized image
    assert flips == {False, True}


def test_test_sample_and_shards(tmp_path):
    cfg = get_cfg()
    cfg.DATASETS.SYNTHETIC.NUM_TEST_IMAGES = 5
    cfg.DATASETS.SYNTHETIC.IMAGE_SIZE = 32
    cfg.INPUT.MIN_SIZE_TEST = 48
    cfg.DATALOADER.NUM_WORKERS = 0
    seen = []
    for rank in range(2):
        loader, metadata = build_detection_test_loader(
            cfg, "synthetic_test", rank=rank, world_size=2
        )
        assert metadata["name"] == "synthetic_test"
        assert [r["image_id"] for r in loader.dataset.records] == [0, 1, 2, 3, 4]
        for batch in loader:
            assert isinstance(batch, list) and len(batch) == 1
            s = batch[0]
            assert "instances" not in s and s["image"].shape == (3, 48, 48)
            assert (s["height"], s["width"]) == (32, 32)
            seen.append(s["image_id"])
    assert seen == [0, 1, 2, 3, 4]  # disjoint, in order, covering the set
    a = next(iter(build_detection_test_loader(cfg, "synthetic_test", rank=0, world_size=2)[0]))
    assert torch.equal(a[0]["image"], loader.dataset[0]["image"])
    for n, world in ((7, 3), (2, 4), (0, 2)):
        shards = [list(inference_shard(n, r, world)) for r in range(world)]
        assert sum(shards, []) == list(range(n))


def _synthetic_cfg(workers=0, grouping=True):
    cfg = get_cfg()
    cfg.DATASETS.TRAIN = ("synthetic_train",)
    cfg.DATASETS.SYNTHETIC.NUM_IMAGES = 12
    cfg.DATASETS.SYNTHETIC.IMAGE_SIZE = 32
    cfg.INPUT.MIN_SIZE_TRAIN = (24, 40)
    cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING = "range"
    cfg.SOLVER.IMS_PER_BATCH = 2
    cfg.DATALOADER.NUM_WORKERS = workers
    cfg.DATALOADER.ASPECT_RATIO_GROUPING = grouping
    cfg.SEED = 3
    return cfg


def _batches(loader, n):
    it = iter(loader)
    return [next(it) for _ in range(n)]


def _same(a, b):
    assert [s["image_id"] for s in a] == [s["image_id"] for s in b]
    for x, y in zip(a, b):
        assert torch.equal(x["image"], y["image"])
        assert torch.equal(x["instances"]["boxes"], y["instances"]["boxes"])
        assert torch.equal(x["instances"]["classes"], y["instances"]["classes"])
        for p, q in zip(x["instances"]["masks"], y["instances"]["masks"]):
            assert all(np.array_equal(u, v) for u, v in zip(p, q))


def test_samples_identical_across_constructions_and_workers():
    ref = _batches(build_detection_train_loader(_synthetic_cfg(0), start_iter=5), 3)
    again = _batches(build_detection_train_loader(_synthetic_cfg(0), start_iter=5), 3)
    workers = _batches(build_detection_train_loader(_synthetic_cfg(2), start_iter=5), 3)
    sizes = set()
    for a, b, c in zip(ref, again, workers):
        _same(a, b)
        _same(a, c)
        sizes.update(s["image"].shape[1] for s in a)
    assert len(sizes) > 1  # the short edge really is drawn per sample
    assert all(24 <= s <= 40 for s in sizes)


def test_unreadable_image_is_skipped_and_counted(tmp_path):
    cfg = _coco_cfg(tmp_path)
    cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS = False
    records, _ = get_detection_dataset(cfg.DATASETS.TRAIN[0], cfg)
    with open(records[1]["file_name"], "wb") as f:  # a.jpg, truncated to garbage
        f.write(b"not a jpeg")
    ds = DetectionTrainDataset(records, DetectionMapper.from_config(cfg, is_train=True), seed=0)
    for epoch in range(4):
        s = ds[(epoch, 1)]
        assert s["image_id"] == 3 and len(s["bad_files"]) >= 1


def test_grouped_sampler_groups_resumes_and_shards():
    rng = np.random.default_rng(0)
    groups = rng.integers(0, 2, 23)  # 23 images, landscape and portrait mixed
    ref = GroupedBatchSampler(groups, 3, seed=5)
    assert ref.iters_per_epoch == sum(np.bincount(groups) // 3)
    stream = [b for b, _ in zip(ref, range(3 * ref.iters_per_epoch))]
    for batch in stream:
        assert len({int(groups[i]) for _, i in batch}) == 1  # one aspect group per batch
    # Each epoch uses every index at most once, and epochs differ.
    ipe = ref.iters_per_epoch
    first = [i for b in stream[:ipe] for _, i in b]
    assert len(set(first)) == len(first)
    assert first != [i for b in stream[ipe : 2 * ipe] for _, i in b]
    # Resume mid-epoch: the same batches from there on.
    resumed = GroupedBatchSampler(groups, 3, seed=5, start_iter=ipe + 2)
    assert [b for b, _ in zip(resumed, range(ipe))] == stream[ipe + 2 : 2 * ipe + 2]
    # Two ranks: iteration t gives rank r the epoch's batch 2t + r, so the ranks' batches are
    # disjoint and together are the epoch's batches in order.
    ranks = [GroupedBatchSampler(groups, 3, seed=5, rank=r, world_size=2) for r in range(2)]
    n = ranks[0].iters_per_epoch
    assert n == ipe // 2
    per_rank = [[[i for _, i in b] for b, _ in zip(sampler, range(n))] for sampler in ranks]
    batches = ranks[0].epoch_batches(0).tolist()
    for t in range(n):
        assert not set(per_rank[0][t]) & set(per_rank[1][t])
        assert [per_rank[0][t], per_rank[1][t]] == batches[2 * t : 2 * t + 2]
    with pytest.raises(ValueError, match="ASPECT_RATIO_GROUPING"):
        GroupedBatchSampler([0, 0, 1, 1], 3)


def test_loader_resumes_with_the_same_batches():
    full = _batches(build_detection_train_loader(_synthetic_cfg(0)), 8)
    resumed = _batches(build_detection_train_loader(_synthetic_cfg(0), start_iter=5), 3)
    for a, b in zip(full[5:], resumed):
        _same(a, b)
    plain = _batches(build_detection_train_loader(_synthetic_cfg(0, grouping=False)), 2)
    assert all(len(b) == 2 for b in plain)


def test_config_keys_validated():
    cfg = load_config("", ["INPUT.MIN_SIZE_TRAIN", "800", "DATASETS.TEST", "voc_2007_test"])
    assert cfg.INPUT.MIN_SIZE_TRAIN == (800,) and cfg.DATASETS.TEST == ("voc_2007_test",)
    assert cfg.INPUT.MAX_SIZE_TRAIN == 1333 and cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING == "choice"
    for opts, key in (
        (["INPUT.RANDOM_FLIP", "vertical"], "INPUT.RANDOM_FLIP"),
        (
            ["INPUT.MIN_SIZE_TRAIN", "(800, 640)", "INPUT.MIN_SIZE_TRAIN_SAMPLING", "range"],
            "MIN_SIZE",
        ),
        (["DATASETS.TRAIN", "voc_2099_trainval"], "voc_2099_trainval"),
        (["INPUT.MIN_SIZE_TEST", "-1"], "INPUT.MIN_SIZE_TEST"),
    ):
        with pytest.raises(ConfigError, match=key):
            load_config("", opts)
