import torch

from insloc.modeling.poolers import RoIPooler


def test_c4_shapes():
    pooler = RoIPooler(["res4"], {"res4": 16}, output_size=14)
    feats = {"res4": torch.randn(3, 32, 16, 16)}
    boxes = torch.tensor([[0.0, 0.0, 128.0, 96.0]]).repeat(3, 1, 1)  # 3 x 1 x 4
    (out,) = pooler(feats, boxes)
    assert out.shape == (3, 32, 14, 14)


def test_fpn_shapes_one_output_per_level():
    strides = {"p2": 4, "p3": 8, "p4": 16, "p5": 32}
    pooler = RoIPooler(list(strides), strides, output_size=7)
    feats = {name: torch.randn(2, 256, 256 // s, 256 // s) for name, s in strides.items()}
    boxes = torch.tensor([10.0, 20.0, 200.0, 180.0]).repeat(2, 4, 1)  # 2 x 4 x 4
    out = pooler(feats, boxes)
    assert [o.shape for o in out] == [(2, 256, 7, 7)] * 4


def test_each_level_pools_its_own_box_on_known_values():
    # Feature value = x coordinate of the feature cell (a ramp along x), level l adds 100 * l, so
    # each pooled bin is the x of the bin centre in feature coordinates (aligned=True: -0.5).
    strides = {"p2": 4, "p3": 8}
    pooler = RoIPooler(["p2", "p3"], strides, output_size=4, sampling_ratio=2)
    feats = {}
    for level, (name, s) in enumerate(strides.items()):
        ramp = torch.arange(128 // s, dtype=torch.float32).expand(128 // s, -1)  # H x W
        feats[name] = (ramp + 100 * level).expand(2, 1, -1, -1).contiguous()  # 2 x 1 x H x W
    boxes = torch.tensor(
        [
            [[16.0, 16.0, 80.0, 80.0], [32.0, 8.0, 96.0, 40.0]],
            [[24.0, 0.0, 56.0, 64.0], [8.0, 8.0, 72.0, 72.0]],
        ]
    )  # 2 x 2 x 4
    out = pooler(feats, boxes)
    for level, s in enumerate(strides.values()):
        for i in range(2):
            x1, _, x2, _ = boxes[i, level].tolist()
            centres = x1 / s - 0.5 + (torch.arange(4) + 0.5) * (x2 - x1) / s / 4  # 4
            expected = (centres + 100 * level).expand(4, 4)  # rows: y bins, cols: x bins
            torch.testing.assert_close(out[level][i, 0], expected, rtol=0, atol=1e-4)
