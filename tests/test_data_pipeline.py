import os

import numpy as np
import pytest
import torch
from PIL import Image

from insloc.config import get_cfg
from insloc.data import (
    FileImageSource,
    PretrainBatchSampler,
    SyntheticSource,
    build_pretrain_dataset,
    build_pretrain_loader,
)


def _cfg(arch="InsLoc", workers=0):
    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = arch
    cfg.INPUT.CANVAS_SIZE = 64
    cfg.INPUT.COPY_PASTE.PASTE_SIZE = (16, 48)
    cfg.INPUT.MOCO.CROP_SIZE = 32
    cfg.SOLVER.IMS_PER_BATCH = 4
    cfg.DATALOADER.NUM_WORKERS = workers
    cfg.DATASETS.SYNTHETIC.NUM_IMAGES = 16
    cfg.DATASETS.SYNTHETIC.IMAGE_SIZE = 48
    cfg.SEED = 7
    return cfg


def _equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], torch.Tensor):
            assert torch.equal(a[k], b[k]), k
        else:
            assert a[k] == b[k], k


@pytest.mark.parametrize("arch", ["InsLoc", "MoCo"])
def test_sample_depends_only_on_key(arch):
    ds = build_pretrain_dataset(_cfg(arch))
    a = ds[(2, 5)]
    ds[(0, 1)]  # building other samples in between changes nothing
    np.random.seed(1)
    _equal(a, ds[(2, 5)])
    assert not torch.equal(a["q"], ds[(3, 5)]["q"])
    assert not torch.equal(a["q"], ds[(2, 6)]["q"])


def test_insloc_sample_contract():
    s = build_pretrain_dataset(_cfg())[(0, 3)]
    assert s["q"].shape == s["k"].shape == (3, 64, 64) and s["q"].dtype == torch.uint8
    assert s["q"].is_contiguous()
    assert s["q_boxes"].shape == (4, 4) and s["q_boxes"].dtype == torch.float32
    # Official recipe: the query pools p5 with the augmented box, the key pools pasted boxes only.
    assert torch.equal(s["q_boxes"][:3], s["q_paste_box"].expand(3, 4))
    assert torch.equal(s["q_boxes"][3], s["q_aug_box"])
    assert torch.equal(s["k_boxes"], s["k_paste_box"].expand(4, 4))
    assert s["index"] == 3 and s["bad_files"] == []


def test_box_aug_disabled_gives_pasted_box():
    cfg = _cfg()
    cfg.INPUT.BOX_AUG.ENABLED = False
    s = build_pretrain_dataset(cfg)[(0, 3)]
    assert torch.equal(s["q_aug_box"], s["q_paste_box"])


@pytest.mark.parametrize("backgrounds", ["dataset", "batch"])
def test_loader_independent_of_worker_count(backgrounds):
    streams = []
    for workers in (0, 2):
        cfg = _cfg(workers=workers)
        cfg.INPUT.COPY_PASTE.BACKGROUNDS = backgrounds
        loader = build_pretrain_loader(cfg, build_pretrain_dataset(cfg), start_iter=3)
        it = iter(loader)
        streams.append([next(it) for _ in range(3)])
        del it, loader
    for a, b in zip(*streams):
        _equal({k: v for k, v in a.items()}, {k: v for k, v in b.items()})
    assert streams[0][0]["q"].shape == (4, 3, 64, 64)


def test_sampler_resume_equals_uninterrupted_tail():
    full = PretrainBatchSampler(10, 3, seed=1)
    stream = [b for _, b in zip(range(12), full)]
    assert full.iters_per_epoch == 3
    for start in (0, 2, 3, 7):
        resumed = PretrainBatchSampler(10, 3, seed=1, start_iter=start)
        assert [b for _, b in zip(range(12 - start), resumed)] == stream[start:]
    # Epoch e is a permutation prefix; the tail of 1 image per epoch is dropped.
    epoch0 = [i for b in stream[:3] for _, i in b]
    assert len(set(epoch0)) == 9 and {e for b in stream[3:6] for e, _ in b} == {1}
    assert stream[:3] != [[(0, i) for _, i in b] for b in stream[3:6]]


def test_ranks_take_disjoint_slices_of_the_global_batch():
    single = PretrainBatchSampler(20, 6, seed=0)
    ranks = [PretrainBatchSampler(20, 2, seed=0, rank=r, world_size=3) for r in range(3)]
    for _, g, *parts in zip(range(7), single, *ranks):
        assert sum(parts, []) == g
        assert len(set(sum(parts, []))) == 6
    with pytest.raises(ValueError, match="20 images.*24"):
        PretrainBatchSampler(20, 8, world_size=3)


def test_loader_batch_size_must_divide():
    cfg = _cfg()
    cfg.SOLVER.IMS_PER_BATCH = 5
    with pytest.raises(ValueError, match="SOLVER.IMS_PER_BATCH"):
        build_pretrain_loader(cfg, build_pretrain_dataset(cfg), world_size=2, rank=0)


class _Spy:
    """Wraps a source and records the reductions asked for."""

    def __init__(self, source):
        self.source, self.reductions = source, []

    def __len__(self):
        return len(self.source)

    def name(self, i):
        return self.source.name(i)

    def size(self, i):
        return self.source.size(i)

    def load(self, i, reduce=1):
        self.reductions.append(reduce)
        return self.source.load(i, reduce)


def test_large_images_decoded_at_reduced_size(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        img = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8).repeat(100, 0).repeat(100, 1)
        Image.fromarray(img).save(os.path.join(tmp_path, f"{i}.jpg"), quality=80)
    for arch, sides in (("InsLoc", (64,)), ("MoCo", (32,))):
        spy = _Spy(FileImageSource.from_folder(str(tmp_path)))
        s = build_pretrain_dataset(_cfg(arch), spy)[(0, 1)]
        assert s["q"].shape[1:] == sides * 2
        # 800 x 800 images: backgrounds need 64 px (reduction 8); crops of >= 20% of the area
        # need at most 48 / 357 of the side (reduction >= 4 for InsLoc, 8 for 32 px MoCo views).
        assert min(spy.reductions) >= 4 and max(spy.reductions) == 8, spy.reductions


def test_synthetic_source_through_the_loader_yields_valid_boxes():
    cfg = _cfg()
    loader = build_pretrain_loader(cfg, build_pretrain_dataset(cfg, SyntheticSource(8, 48)))
    batch = next(iter(loader))
    boxes = batch["q_paste_box"]
    assert boxes.shape == (4, 4)
    assert (boxes[:, :2] >= 0).all() and (boxes[:, 2:] <= 64).all()
    assert (boxes[:, 2:] > boxes[:, :2]).all()
