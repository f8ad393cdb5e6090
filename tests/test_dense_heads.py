"""Hypercolumns, the dilated trunk, the introspection likelihood, and a few training steps of
each dense head."""

import numpy as np
import pytest
import torch

from dense_match.datasets import LabelledImages, WarpTrainingPairs
from dense_match.features import DenseFeatures
from dense_match.heads import AnchorNet, Introspection, introspection_nll
from dense_match.model import DenseModel
from insloc.data import SyntheticSource
from insloc.modeling.backbone import build_resnet


def test_dilated_res5_keeps_stride_16():
    x = torch.randn(1, 3, 64, 64)
    plain = build_resnet(50, 8, "BN")
    dilated = build_resnet(50, 8, "BN", res5_dilation=2)
    assert plain(x)["res5"].shape[-2:] == (2, 2)
    assert dilated(x)["res5"].shape[-2:] == (4, 4) and dilated.strides == {"res5": 16}
    # same parameter names and shapes: weights load across the two
    assert {k: v.shape for k, v in plain.state_dict().items()} == {
        k: v.shape for k, v in dilated.state_dict().items()
    }


def test_unknown_layer_lists_the_valid_ones():
    with pytest.raises(ValueError, match="res2.*res3.*res4.*res5"):
        build_resnet(50, 8, "BN", out_features=["res6"])


def test_hypercolumn_shapes_and_normalisation():
    trunk = build_resnet(50, 8, "BN", out_features=["res3", "res4", "res5"])
    features = DenseFeatures(trunk, reduce_dim=6, stride=4, relu=True)
    out = features(torch.randn(2, 3, 64, 48))
    assert out.shape == (2, 18, 16, 12) and features.out_channels == 18
    for part in out.split(6, dim=1):  # every stage is unit length per location
        torch.testing.assert_close(part.norm(dim=1), torch.ones(2, 16, 12))
    raw = DenseFeatures(build_resnet(50, 8, "BN", out_features=["res2", "res4"]), stride=8)
    assert raw(torch.randn(1, 3, 64, 64)).shape == (1, 32 + 128, 8, 8)
    single = DenseFeatures(build_resnet(50, 8, "BN", out_features=["res4"]))
    assert single(torch.randn(1, 3, 64, 64)).shape == (1, 128, 4, 4) and single.stride == 16


def test_introspection_prefers_high_sigma_on_wrong_matches():
    # Four positive pairs: two matched well (s = 0.95), two badly (s = -0.5).
    score = torch.tensor([0.95, 0.95, -0.5, -0.5])
    low, high = 0.1, 2.0
    sigma_on_wrong = torch.tensor([low, low, high, high])
    sigma_on_right = torch.tensor([high, high, low, low])
    loss_wrong = introspection_nll(score, sigma_on_wrong, positive=True).sum()
    loss_right = introspection_nll(score, sigma_on_right, positive=True).sum()
    assert loss_wrong < loss_right
    # and the same for negatives that score too high
    neg = torch.tensor([-0.2, 0.9])
    assert (
        introspection_nll(neg, torch.tensor([low, high]), positive=False).sum()
        < introspection_nll(neg, torch.tensor([high, low]), positive=False).sum()
    )


def test_introspection_normaliser_integrates_to_one():
    s = torch.linspace(-1, 1, 20001)
    for sigma in (0.05, 0.5, 3.0):
        sig = torch.full_like(s, sigma)
        for positive in (True, False):
            density = torch.exp(-introspection_nll(s, sig, positive, margin=0.5))
            assert torch.trapezoid(density, s).item() == pytest.approx(1.0, abs=1e-3)


def test_introspection_sigma_is_bounded_and_leaves_the_descriptors_a_gradient():
    head = Introspection(8, dim=4, min_sigma=0.01, max_sigma=100.0)
    torch.nn.init.constant_(head.sigma.weight, 1.0)
    torch.nn.init.zeros_(head.sigma.bias)
    for scale in (-1e4, 0.0, 1e4):  # features that would send an unbounded sigma anywhere
        sigma = head(torch.full((1, 8, 3, 3), scale))["sigma"]
        assert (sigma >= 0.01 * (1 - 1e-5)).all() and (sigma <= 100.0 * (1 + 1e-5)).all()
    assert head(torch.zeros(1, 8, 1, 1))["sigma"].item() == pytest.approx(1.0)  # log-midpoint
    # At the largest sigma a positive's score still gets a gradient of 1 / MAX_SIGMA, where an
    # unbounded sigma (thousands under SGD) leaves the loss at log 2 and the descriptors stuck.
    score = torch.tensor([0.3], requires_grad=True)
    introspection_nll(score, torch.tensor([100.0]), positive=True).sum().backward()
    assert score.grad.item() == pytest.approx(-1 / 100.0)
    nll = introspection_nll(torch.tensor([0.3]), torch.tensor([1e4]), positive=True)
    assert nll.item() == pytest.approx(np.log(2.0), abs=1e-3)


def _train(model, batch, steps):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(steps):
        out = model(batch)
        loss = sum(v for k, v in out.items() if k.startswith("loss"))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_introspection_training_lowers_its_loss():
    torch.manual_seed(0)
    trunk = build_resnet(50, 8, "BN", res5_dilation=2, out_features=["res5"])
    features = DenseFeatures(trunk)
    model = DenseModel(features, Introspection(features.out_channels, dim=16, neg_dist=8.0))
    data = WarpTrainingPairs(SyntheticSource(4, 64, 0), 64, 60, warp={"tps": 0.02})
    batch = torch.utils.data.default_collate([data[(0, i)] for i in range(4)])
    losses = _train(model, batch, 8)
    assert losses[-1] < losses[0]


def test_anchornet_training_lowers_its_loss():
    torch.manual_seed(0)
    trunk = build_resnet(50, 8, "BN", out_features=["res3", "res4", "res5"])
    features = DenseFeatures(trunk, reduce_dim=8, stride=4, relu=True)
    head = AnchorNet(features.out_channels, num_classes=5, num_filters=3, ae_dim=8)
    model = DenseModel(features, head)
    data = LabelledImages.from_path("synthetic", 64, num_synthetic=4)
    batch = torch.utils.data.default_collate([data[(0, i)] for i in range(4)])
    assert batch["labels"].shape == (4, 5) and (batch["labels"].sum(1) >= 1).all()
    losses = _train(model, batch, 8)
    assert losses[-1] < losses[0]


def test_warp_training_pairs_correspond():
    data = WarpTrainingPairs(SyntheticSource(2, 64, 0), 64, 30)
    s = data[(0, 1)]
    assert s["points"].shape == s["warped_points"].shape == (30, 2)
    assert s["image"].shape == s["warped"].shape == (3, 64, 64)
    assert torch.equal(data[(0, 1)]["warped"], s["warped"])  # keyed: the same sample again
    assert ((s["points"] >= 0) & (s["points"] <= 63)).all()
    assert np.abs((s["points"] - s["warped_points"]).numpy()).mean() > 0.5
