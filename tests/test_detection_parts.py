import math

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from insloc.modeling.backbone import build_resnet, freeze_stages
from insloc.modeling.detection import (
    RPN,
    AnchorGenerator,
    RPNHead,
    assign_boxes_to_levels,
    detector_postprocess,
    paste_masks_in_image,
    rasterize_polygons_within_box,
)
from insloc.modeling.detection.poolers import LevelRoIPooler
from insloc.modeling.norm import (
    DeferredSyncBatchNorm,
    convert_sync_bn_if_distributed,
    defer_sync_bn,
)


def test_anchors_follow_detectron2_formula():
    # One size, three ratios, stride 16, a 1 x 2 map: cell anchors are exact (not rounded, as
    # torchvision's) and the second position is shifted by one stride.
    gen = AnchorGenerator([[32]], [[0.5, 1.0, 2.0]], [16])
    anchors = gen([torch.zeros(1, 1, 1, 2)])[0]
    a, b = math.sqrt(2048) / 2, math.sqrt(512) / 2  # w/2 and h/2 of the 0.5 ratio: 22.63, 11.31
    expected = torch.tensor(
        [[-a, -b, a, b], [-16, -16, 16, 16], [-b, -a, b, a]], dtype=torch.float32
    )
    expected = torch.cat([expected, expected + torch.tensor([16.0, 0, 16, 0])])
    torch.testing.assert_close(anchors, expected)
    # Several sizes on one level (C4): size-major order, ratios inner.
    c4 = AnchorGenerator([[32, 64]], [[0.5, 1.0]], [16]).grid_anchors(0, 1, 1)
    torch.testing.assert_close(c4[1], torch.tensor([-16.0, -16, 16, 16]))
    torch.testing.assert_close(c4[3], torch.tensor([-32.0, -32, 32, 32]))
    # Rows before columns: the third of four positions of a 2 x 2 map is (x 0, y 16).
    grid = AnchorGenerator([[8]], [[1.0]], [16]).grid_anchors(0, 2, 2)
    torch.testing.assert_close(grid[2], torch.tensor([-4.0, 12, 4, 20]))


def test_pooler_level_assignment():
    sides = torch.tensor([224.0, 112, 448, 56, 10, 1000, 223.9, 224 * math.sqrt(2)])
    boxes = torch.stack([torch.zeros_like(sides), torch.zeros_like(sides), sides, sides], dim=1)
    levels = assign_boxes_to_levels(boxes, 2, 5)
    # Canonical 224 -> P4; halving the side goes one level down; clamped to P2-P5.
    assert levels.tolist() == [2, 1, 3, 0, 0, 3, 1, 2]
    # A 32 x 128 box has sqrt(area) 64: level floor(4 + log2(64 / 224)) = 2 -> P2.
    assert assign_boxes_to_levels(torch.tensor([[0.0, 0, 32, 128]]), 2, 5).tolist() == [0]


def test_pooler_pools_each_box_on_its_level():
    strides = {"p2": 4, "p3": 8}
    pooler = LevelRoIPooler(["p2", "p3"], strides, output_size=2)
    # Constant maps: p2 is 1 everywhere, p3 is 2; a small box reads p2, a large one p3.
    features = {"p2": torch.ones(1, 1, 64, 64), "p3": torch.full((1, 1, 32, 32), 2.0)}
    small, large = [0.0, 0, 20, 20], [0.0, 0, 200, 200]
    out = pooler(features, [torch.tensor([small, large, small])])
    assert out[:, 0].mean(dim=(1, 2)).tolist() == [1.0, 2.0, 1.0]
    with pytest.raises(ValueError, match="strides"):
        LevelRoIPooler(["p2", "p4"], {"p2": 4, "p4": 16}, 7)


def test_paste_constant_mask_fills_its_box():
    masks = paste_masks_in_image(
        torch.ones(2, 28, 28), torch.tensor([[10.0, 20, 30, 50], [0, 0, 5, 3]]), (64, 48)
    )
    expected = torch.zeros(2, 64, 48, dtype=torch.bool)
    expected[0, 20:50, 10:30] = True
    expected[1, 0:3, 0:5] = True
    assert masks.dtype == torch.bool and torch.equal(masks, expected)
    assert paste_masks_in_image(torch.ones(0, 28, 28), torch.zeros(0, 4), (8, 8)).shape == (0, 8, 8)


def test_polygon_rasterised_inside_the_box():
    box = np.array([10, 20, 38, 48], dtype=np.float32)
    left_half = np.array([10, 20, 24, 20, 24, 48, 10, 48], dtype=np.float32)
    mask = rasterize_polygons_within_box([left_half], box, 28)
    assert mask.shape == (28, 28) and mask[:, :14].all() and not mask[:, 14:].any()
    # The same polygon in a box twice as wide covers the left quarter of the target.
    wide = rasterize_polygons_within_box([left_half], np.array([10, 20, 66, 48], np.float32), 28)
    assert wide[:, :7].all() and not wide[:, 7:].any()


def test_rpn_image_without_boxes_has_only_background():
    torch.manual_seed(0)
    rpn = RPN(
        in_features=["res4"],
        head=RPNHead(8, 3),
        anchor_generator=AnchorGenerator([[16]], [[0.5, 1.0, 2.0]], [16]),
        pre_nms_topk=(50, 50),
        post_nms_topk=(20, 20),
    ).train()
    features = {"res4": torch.randn(2, 8, 4, 6)}
    gt = [torch.zeros(0, 4), torch.tensor([[10.0, 10, 40, 40]])]
    labels, _ = rpn.label_anchors(torch.cat(rpn.anchor_generator([features["res4"]])), gt)
    assert (labels[0] == 1).sum() == 0 and (labels[0] == 0).sum() == 72  # all 4 x 6 x 3 negatives
    assert (labels[1] == 1).sum() >= 1  # the box's best anchor is positive
    proposals, losses = rpn(features, [(64, 96), (60, 90)], gt)
    assert len(proposals) == 2 and all(len(p) <= 20 for p in proposals)
    assert (proposals[1][:, 2] <= 90).all() and (proposals[1][:, 3] <= 60).all()
    # Both losses are sums divided by batch_size_per_image * num_images (detectron2).
    assert torch.isfinite(losses["loss_rpn_cls"]) and losses["loss_rpn_loc"] >= 0
    _, only_empty = rpn(features, [(64, 96), (64, 96)], [torch.zeros(0, 4)] * 2)
    assert only_empty["loss_rpn_loc"].item() == 0.0 and only_empty["loss_rpn_cls"] > 0


def test_postprocess_scales_clips_and_drops_empty_boxes():
    det = {
        "boxes": torch.tensor([[10.0, 5, 30, 25], [45, 0, 60, 8], [50, 10, 50, 20]]),
        "scores": torch.tensor([0.9, 0.8, 0.7]),
        "classes": torch.tensor([1, 0, 2]),
        "mask_probs": torch.ones(3, 28, 28),
    }
    out = detector_postprocess(det, (40, 50), (80, 100))
    torch.testing.assert_close(out["boxes"], torch.tensor([[20.0, 10, 60, 50], [90, 0, 100, 16]]))
    assert out["classes"].tolist() == [1, 0] and out["masks"].shape == (2, 80, 100)
    assert out["masks"][0, 10:50, 20:60].all() and out["masks"][0].sum() == 40 * 40


def test_freeze_at_freezes_stem_and_stages_with_frozen_bn():
    trunk = build_resnet(18, 8, "BN", num_stages=3)
    freeze_stages(trunk, 2)  # stem + res2
    assert isinstance(trunk.bn1, FrozenBatchNorm2d) and isinstance(
        trunk.layer1[0].bn1, FrozenBatchNorm2d
    )
    assert type(trunk.layer2[0].bn1) is nn.BatchNorm2d
    assert not any(p.requires_grad for p in trunk.layer1.parameters())
    assert not trunk.conv1.weight.requires_grad and trunk.layer2[0].conv1.weight.requires_grad
    freeze_stages(build_resnet(18, 8, "BN", num_stages=3), 5)  # C4: no res5 in the trunk
    with pytest.raises(ValueError, match="0..5"):
        freeze_stages(trunk, 6)


def test_syncbn_is_plain_bn_in_one_process():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.SyncBatchNorm(4))
    model[1].running_mean.fill_(0.5)
    defer_sync_bn(model)
    assert type(model[1]) is DeferredSyncBatchNorm and model[1].running_mean[0] == 0.5
    model(torch.randn(2, 3, 4, 4)).sum().backward()  # a CPU process runs it
    assert (
        convert_sync_bn_if_distributed(model) is model and type(model[1]) is DeferredSyncBatchNorm
    )
    assert set(model.state_dict()) == {"0.weight", "0.bias"} | {
        f"1.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    }


def test_syncbn_conversion_under_ddp(monkeypatch, caplog):
    from insloc.modeling import norm

    monkeypatch.setattr(norm.comm, "get_world_size", lambda: 2)
    model = defer_sync_bn(nn.Sequential(nn.Conv2d(3, 4, 1), nn.SyncBatchNorm(4), nn.BatchNorm2d(4)))
    model[1].running_var.fill_(3.0)
    assert convert_sync_bn_if_distributed(model, "cpu") is model  # no CPU SyncBN in PyTorch
    assert type(model[1]) is DeferredSyncBatchNorm and "CPU" in caplog.text
    convert_sync_bn_if_distributed(model, "cuda")  # building SyncBN needs no process group
    assert type(model[1]) is nn.SyncBatchNorm and model[1].running_var[0] == 3.0
    assert type(model[2]) is nn.BatchNorm2d  # layers configured as BN stay BN
