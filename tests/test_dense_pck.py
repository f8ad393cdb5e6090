"""PCK arithmetic on hand-made cases: every normalisation, both averagings, exclusions."""

import numpy as np
import pytest

from dense_match.pck import PCKMeter, norm_size

KPS = np.array([[10.0, 20.0], [30.0, 60.0], [np.nan, np.nan]])


@pytest.mark.parametrize(
    "norm, expected",
    [
        ("image", 200.0),  # max(h=100, w=200)
        ("bbox", 50.0),  # box 40 wide, 50 high
        ("kps", 40.0),  # keypoint box 20 x 40 (the NaN row ignored)
        ("kps_padded", 61.0),  # min corner padded to (-1, -1): 31 x 61
    ],
)
def test_norm_sizes(norm, expected):
    assert norm_size(norm, KPS, (100, 200), bbox=[5, 10, 45, 60]) == pytest.approx(expected)


def test_bbox_norm_without_box_is_an_error():
    with pytest.raises(ValueError, match="bbox"):
        norm_size("bbox", KPS, (100, 200), bbox=None)


def test_thresholds_and_exclusions():
    meter = PCKMeter(alphas=(0.05, 0.1), average="per_keypoint")
    gt = np.array([[10, 10], [50, 50], [90, 90], [np.nan, np.nan], [150, 10]], float)
    pred = gt + np.array([[4, 0], [0, 9], [30, 0], [0, 0], [0, 0]], float)
    pred[3] = np.nan
    # L = 100: thresholds 5 and 10 px. Row 3 is missing, row 4 outside the 100 x 100 image.
    correct = meter.add(pred, gt, 100.0, (100, 100))
    assert correct.tolist() == [[True, True], [False, True], [False, False], [False, False]] + [
        [False, False]
    ]
    s = meter.summary()
    assert s["keypoints"] == 3 and s["excluded_keypoints"] == 2 and s["pairs"] == 1
    assert s["pck@0.05"] == pytest.approx(100 / 3) and s["pck@0.1"] == pytest.approx(200 / 3)


def test_nan_prediction_counts_as_wrong():
    meter = PCKMeter(alphas=(0.1,))
    gt = np.array([[10.0, 10.0], [20.0, 20.0]])
    meter.add(np.array([[10.0, 10.0], [np.nan, np.nan]]), gt, 100.0, (100, 100))
    assert meter.summary()["pck@0.1"] == pytest.approx(50.0)


@pytest.mark.parametrize("average, expected", [("per_image", 62.5), ("per_keypoint", 40.0)])
def test_per_image_vs_per_keypoint(average, expected):
    meter = PCKMeter(alphas=(0.1,), average=average)
    # Pair 1: 2 keypoints, both right (100%); pair 2: 8 keypoints, 2 right (25%).
    gt1 = np.array([[10.0, 10.0], [20.0, 20.0]])
    meter.add(gt1.copy(), gt1, 100.0, (100, 100), "a")
    gt2 = np.tile([[50.0, 50.0]], (8, 1))
    pred2 = gt2 + np.array([[0, 0]] * 2 + [[40, 0]] * 6, float)
    meter.add(pred2, gt2, 100.0, (100, 100), "b")
    s = meter.summary()
    # per image: (100 + 25) / 2; per keypoint: 4 / 10
    assert s["pck@0.1"] == pytest.approx(expected)
    assert s["per_class"]["a"]["pck@0.1"] == pytest.approx(100.0)
    assert s["per_class"]["b"]["pck@0.1"] == pytest.approx(25.0)


def test_source_keypoints_outside_are_excluded():
    meter = PCKMeter(alphas=(0.1,))
    gt = np.array([[10.0, 10.0], [20.0, 20.0]])
    meter.add(gt.copy(), gt, 100.0, (100, 100), src_valid=np.array([True, False]))
    s = meter.summary()
    assert s["keypoints"] == 1 and s["excluded_keypoints"] == 1 and s["pck@0.1"] == 100.0
