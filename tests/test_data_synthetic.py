import numpy as np
import pytest

from insloc.data.synthetic import CLASS_NAMES, SyntheticScenes


def test_scene_types_and_shapes():
    scenes = SyntheticScenes(num_images=5, image_size=64, seed=3)
    assert len(scenes) == 5
    for i in range(5):
        s = scenes[i]
        n = len(s["labels"])
        assert s["image"].shape == (64, 64, 3) and s["image"].dtype == np.uint8
        assert s["boxes"].shape == (n, 4) and s["boxes"].dtype == np.float32
        assert s["masks"].shape == (n, 64, 64) and s["masks"].dtype == bool
        assert s["labels"].dtype == np.int64 and 1 <= n <= 6
        assert ((0 <= s["labels"]) & (s["labels"] < len(CLASS_NAMES))).all()


def test_boxes_are_tight_boxes_of_disjoint_visible_masks():
    scenes = SyntheticScenes(num_images=20, image_size=48, seed=0)
    for i in range(20):
        s = scenes[i]
        masks = s["masks"]
        assert masks.any(axis=(1, 2)).all(), "fully occluded objects must be dropped"
        assert masks.sum(axis=0).max() <= 1, "visible masks overlap"
        for mask, box in zip(masks, s["boxes"]):
            ys, xs = np.nonzero(mask)
            np.testing.assert_array_equal(box, [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def test_deterministic_by_seed_and_index_only():
    a, b = SyntheticScenes(4, 32, seed=1), SyntheticScenes(9, 32, seed=1)
    np.random.seed(0)
    x = a[2]
    np.random.seed(123)
    y = b[2]
    for k in x:
        np.testing.assert_array_equal(x[k], y[k])
    assert not np.array_equal(a[1]["image"], a[2]["image"])
    assert not np.array_equal(SyntheticScenes(4, 32, seed=2)[2]["image"], x["image"])


def test_out_of_range_index():
    with pytest.raises(IndexError):
        SyntheticScenes(3, 32)[3]
