"""Keypoint transfer: identical pairs, and descriptors that encode position recover known
translations and homographies."""

import math

import numpy as np
import pytest
import torch

from dense_match.evaluate import evaluate_matching
from dense_match.features import DenseFeatures
from dense_match.matching import transfer_keypoints
from dense_match.model import DenseModel
from dense_match.warps import random_warp
from insloc.modeling.backbone import build_resnet

SIZE = 64


def encode(points: np.ndarray) -> torch.Tensor:
    """Unit descriptors that identify an image position: Fourier features of (x, y)."""
    freqs = 2 * math.pi / np.array([256.0, 128.0, 64.0, 32.0])
    angles = points[:, :, None] * freqs  # M x 2 x F
    feats = np.concatenate([np.cos(angles), np.sin(angles)], -1).reshape(len(points), -1)
    return torch.from_numpy(feats / np.linalg.norm(feats, axis=1, keepdims=True)).float()


def descriptor_map(source_points_of) -> torch.Tensor:
    """D x SIZE x SIZE map whose location (i, j) describes the source point it shows."""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    grid = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    return encode(source_points_of(grid)).T.reshape(-1, SIZE, SIZE)


@pytest.mark.parametrize("method", ["nn", "mutual_nn", "soft_argmax"])
def test_position_descriptor_recovers_a_translation(method):
    shift = np.array([7.0, -5.0])
    src = descriptor_map(lambda p: p)
    trg = descriptor_map(lambda p: p - shift)  # target pixel p shows source point p - shift
    kps = torch.tensor([[20.0, 30.0], [40.0, 15.0], [12.0, 45.0]])
    pred = transfer_keypoints(
        src, trg, kps, (SIZE, SIZE), (SIZE, SIZE), method=method, temperature=0.001
    )
    np.testing.assert_allclose(pred.numpy(), kps.numpy() + shift, atol=0.6)


def test_position_descriptor_recovers_a_homography():
    warp = random_warp(np.random.default_rng(0), (SIZE, SIZE), homography=0.1, tps=0.0)
    src = descriptor_map(lambda p: p)
    trg = descriptor_map(warp.backward)
    kps = np.array([[25.0, 28.0], [35.0, 40.0], [30.0, 20.0], [22.0, 38.0]])
    pred = transfer_keypoints(src, trg, torch.from_numpy(kps).float(), (SIZE, SIZE), (SIZE, SIZE))
    # nearest neighbour on a one-pixel grid: within a pixel of the exact correspondent
    assert np.abs(pred.numpy() - warp.forward(kps)).max() <= 1.0


def test_identity_transfer_keeps_the_relative_position():
    desc = torch.randn(4, 3, 5)  # ignored
    kps = torch.tensor([[0.0, 0.0], [9.0, 4.0], [4.5, 2.0]])  # in a 5 x 10 (h x w) image
    pred = transfer_keypoints(desc, desc, kps, (5, 10), (10, 40), method="identity")
    # pixel centres: x' = (x + 0.5) * 40 / 10 - 0.5, y' = (y + 0.5) * 10 / 5 - 0.5
    np.testing.assert_allclose(pred.numpy(), [[1.5, 0.5], [37.5, 8.5], [19.5, 4.5]])


def test_sigma_weighting_prefers_confident_locations():
    src = descriptor_map(lambda p: p)
    trg = src.clone()
    kps = torch.tensor([[20.0, 20.0]])
    sigma = torch.ones(1, SIZE, SIZE)
    sigma[0, 20, 20] = 1e6  # the true match is declared hopeless
    pred = transfer_keypoints(src, trg, kps, (SIZE, SIZE), (SIZE, SIZE), trg_sigma=sigma)
    assert pred[0].tolist() != [20.0, 20.0]


def test_identical_pair_gives_pck_one():
    torch.manual_seed(0)
    trunk = build_resnet(50, 8, "BN", out_features=["res3"])
    model = DenseModel(DenseFeatures(trunk)).eval()
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)  # distinct descriptors
    centres = (np.arange(SIZE // 8) + 0.5) * 8 - 0.5  # res3 locations (stride 8)
    kps = np.stack(np.meshgrid(centres[1:-1], centres[1:-1]), -1).reshape(-1, 2)
    pair = {
        "src_image": image,
        "trg_image": image.copy(),
        "src_kps": kps,
        "trg_kps": kps.copy(),
        "trg_bbox": None,
        "category": "all",
        "name": "identical",
    }
    protocol = {"norm": "image", "resize": "original", "average": "per_image"}
    result = evaluate_matching(model, [pair], protocol, side=SIZE)
    assert result["pck@0.05"] == result["pck@0.1"] == result["pck@0.15"] == 100.0
    assert result["keypoints"] == len(kps)
