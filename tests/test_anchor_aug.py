import numpy as np

from insloc.data.anchor_aug import AnchorBoxSampler, box_iou, nms


def test_anchor_grid():
    s = AnchorBoxSampler(256)
    assert s.anchors.shape == (16 * 16 * 20, 4) and s.anchors.dtype == np.float32
    w = s.anchors[:, 2] - s.anchors[:, 0]
    h = s.anchors[:, 3] - s.anchors[:, 1]
    # First cell: centre (0, 0); size 32 ratio 0.5 (h / w) keeps the area 32^2.
    np.testing.assert_allclose(w[0] * h[0], 32 * 32, rtol=1e-5)
    np.testing.assert_allclose(h[0] / w[0], 0.5, rtol=1e-5)
    np.testing.assert_allclose((s.anchors[:20, :2] + s.anchors[:20, 2:]) / 2, 0, atol=1e-4)
    centres = (s.anchors[:, :2] + s.anchors[:, 2:]) / 2
    assert centres.max() == 15 * 16


def test_drawn_box_overlaps_when_candidates_exist():
    s = AnchorBoxSampler(256)
    rng = np.random.default_rng(0)
    for _ in range(50):
        x1, y1 = rng.uniform(0, 120, size=2)
        box = np.array([x1, y1, x1 + rng.uniform(40, 130), y1 + rng.uniform(40, 130)], np.float32)
        assert len(s.candidates(box)) > 0
        out = s(box, rng)
        assert out.shape == (4,) and out.dtype == np.float32
        assert box_iou(box[None], out[None])[0, 0] > 0.5


def test_fallback_draws_among_best_overlaps():
    s = AnchorBoxSampler(256, fallback_topk=3)
    box = np.array([100, 100, 104, 104], np.float32)  # 4 x 4: no anchor reaches IoU 0.5
    assert len(s.candidates(box)) == 0
    best = np.sort(s.ious(box))[-3:]
    rng = np.random.default_rng(1)
    draws = {tuple(s(box, rng)) for _ in range(60)}
    assert 1 < len(draws) <= 3
    for d in draws:
        assert box_iou(box[None], np.array([d], np.float32))[0, 0] >= best[0] - 1e-6


def test_nms_keeps_no_overlapping_pair():
    rng = np.random.default_rng(0)
    boxes = AnchorBoxSampler(128).anchors[:300]
    keep = nms(boxes, rng.random(len(boxes)), 0.5)
    iou = box_iou(boxes[keep], boxes[keep])
    np.fill_diagonal(iou, 0)
    assert 0 < len(keep) < len(boxes) and iou.max() <= 0.5


def test_nms_is_torchvisions():
    import torch
    import torchvision

    rng = np.random.default_rng(0)
    anchors = AnchorBoxSampler(256).anchors
    for n in (1, 2, 7, 40, 300):
        for boxes in (anchors[rng.choice(len(anchors), n, replace=False)], anchors[:n]):
            scores = rng.random(n, dtype=np.float32)
            for thresh in (0.3, 0.5, 0.7):
                theirs = torchvision.ops.nms(
                    torch.from_numpy(boxes), torch.from_numpy(scores), thresh
                )
                np.testing.assert_array_equal(nms(boxes, scores, thresh), theirs.numpy())


def test_nms_spreads_draws():
    # Same-shape anchors one stride apart overlap > 0.7, so NMS keeps a spaced-out subset and
    # cluster edges survive more often than cluster centres: the drawn centres spread further
    # than with a plain uniform draw over the candidates.
    box = np.array([40, 40, 220, 200], np.float32)

    def centre_std(nms_thresh):
        sampler = AnchorBoxSampler(256, nms_thresh=nms_thresh)
        rng = np.random.default_rng(0)
        draws = np.stack([sampler(box, rng) for _ in range(1000)])
        return ((draws[:, :2] + draws[:, 2:]) / 2).std(axis=0).mean()

    assert centre_std(0.7) > centre_std(1.0) + 0.7  # about 19.0 vs 17.5 pixels


def test_official_fallback_runs_nms_over_the_top_k():
    # No anchor reaches IoU 0.5 with a 4 x 4 box: the official code takes the 4000 best-overlapping
    # anchors, scores them randomly and keeps the NMS survivors (at 0.7) to draw from.
    s = AnchorBoxSampler(256, fallback_topk=4000)
    box = np.array([100, 100, 104, 104], np.float32)
    assert len(s.candidates(box)) == 0
    top = set(np.argsort(-s.ious(box), kind="stable")[:4000].tolist())
    rng = np.random.default_rng(0)
    for _ in range(3):
        keep = s.survivors(box, rng)
        assert set(keep.tolist()) <= top
        iou = box_iou(s.anchors[keep], s.anchors[keep])
        np.fill_diagonal(iou, 0)
        assert iou.max() <= 0.7 + 1e-6 and 100 < len(keep) < 4000
    # NMS thins the large anchors (one-stride neighbours overlap > 0.7), so they are rarer among
    # the survivors than among the top 4000; the drawn box is one of the survivors.
    area = (s.anchors[:, 2] - s.anchors[:, 0]) * (s.anchors[:, 3] - s.anchors[:, 1])
    top_large = np.mean([area[i] > 200**2 for i in top])
    assert np.mean(area[keep] > 200**2) < top_large / 2
    keep = s.survivors(box, np.random.default_rng(5))
    drawn = s(box, np.random.default_rng(5))
    assert any((s.anchors[i] == drawn).all() for i in keep)
