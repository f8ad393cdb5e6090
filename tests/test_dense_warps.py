"""Synthetic warps: exact correspondences both ways, and rendering that follows them."""

import numpy as np

from dense_match.warps import random_warp


def test_round_trip_points():
    rng = np.random.default_rng(0)
    warp = random_warp(rng, (80, 100), homography=0.15, tps_grid=3, tps=0.05)
    u = rng.uniform(15, 65, (200, 2))
    v = warp.forward(u)  # x -> x'
    assert np.abs(v - u).mean() > 1.0  # the warp really moves points
    np.testing.assert_allclose(warp.backward(v), u, atol=1e-6)  # x' -> x
    np.testing.assert_allclose(warp.forward(warp.backward(v)), v, atol=1e-6)


def test_pure_homography_forward_is_exact_inverse():
    rng = np.random.default_rng(1)
    warp = random_warp(rng, (64, 64), homography=0.2, tps=0.0)
    v = rng.uniform(0, 63, (50, 2))
    np.testing.assert_allclose(warp.forward(warp.backward(v)), v, atol=1e-9)


def test_render_samples_the_source_at_the_backward_points():
    h, w = 60, 70
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    image = np.stack([xs * 3, ys * 4, xs + ys], -1).astype(np.uint8)  # linear ramps
    warp = random_warp(np.random.default_rng(2), (h, w), homography=0.1, tps=0.03)
    warped = warp.render(image)
    v = np.array([[30.0, 25.0], [40.0, 35.0], [20.0, 30.0]])
    u = warp.backward(v)
    for (vx, vy), (ux, uy) in zip(v, u):
        expected = [ux * 3, uy * 4, ux + uy]
        np.testing.assert_allclose(warped[int(vy), int(vx)], expected, atol=1.01)
