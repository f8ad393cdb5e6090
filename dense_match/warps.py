"""Synthetic warps with exact correspondences: a random homography composed with a thin-plate
spline.

A :class:`Warp` is stored as the map from warped-image pixels v to source-image pixels u
(``backward``), which is what rendering needs (every output pixel samples the source). ``forward``
inverts it numerically (Newton's method), so keypoints can be carried either way. Coordinates are
0-based pixel centres: pixel (i, j) of an image is the point x = j, y = i.
"""

import cv2
import numpy as np

__all__ = ["Warp", "random_warp"]


def _tps_kernel(r2: np.ndarray) -> np.ndarray:
    """U(r) = r^2 log r^2 (thin-plate spline radial basis; 0 at r = 0)."""
    return np.where(r2 > 0, r2 * np.log(np.maximum(r2, 1e-12)), 0.0)


class Warp:
    """u = H(v + d(v)): a thin-plate spline displacement d, then a homography H.

    Args:
        homography: 3 x 3, maps displaced warped-image points to source points.
        ctrl: K x 2 TPS control points (warped-image pixels).
        offsets: K x 2 displacements at the control points (pixels; all zero: no TPS).
        size: (h, w) of the warped image.
    """

    def __init__(self, homography: np.ndarray, ctrl: np.ndarray, offsets: np.ndarray, size):
        self.homography = np.asarray(homography, np.float64)
        self.ctrl = np.asarray(ctrl, np.float64)
        self.size = tuple(int(s) for s in size)
        k = len(self.ctrl)
        # Solve [[K, P], [P^T, 0]] [w; a] = [offsets; 0] once: d(v) = U(v) w + [1 v] a.
        system = np.zeros((k + 3, k + 3))
        system[:k, :k] = _tps_kernel(_sq_dist(self.ctrl, self.ctrl))
        system[:k, k] = 1
        system[:k, k + 1 :] = self.ctrl
        system[k:, :k] = system[:k, k:].T
        rhs = np.zeros((k + 3, 2))
        rhs[:k] = offsets
        self._coef = np.linalg.solve(system, rhs)  # (K + 3) x 2

    def _displace(self, v: np.ndarray) -> np.ndarray:
        k = len(self.ctrl)
        basis = _tps_kernel(_sq_dist(v, self.ctrl))  # M x K
        return v + basis @ self._coef[:k] + self._coef[k] + v @ self._coef[k + 1 :]

    def backward(self, v: np.ndarray) -> np.ndarray:
        """Warped-image points v (M x 2, x y) -> their source points u (M x 2)."""
        p = self._displace(np.asarray(v, np.float64).reshape(-1, 2))
        q = np.concatenate([p, np.ones((len(p), 1))], 1) @ self.homography.T  # M x 3
        return q[:, :2] / q[:, 2:]

    def forward(self, u: np.ndarray, iters: int = 20) -> np.ndarray:
        """Source points u (M x 2) -> warped-image points v with backward(v) = u (Newton)."""
        u = np.asarray(u, np.float64).reshape(-1, 2)
        inv = np.linalg.inv(self.homography)
        q = np.concatenate([u, np.ones((len(u), 1))], 1) @ inv.T
        v = q[:, :2] / q[:, 2:]  # exact when there is no TPS; the TPS is a small correction
        eps = 1e-3
        for _ in range(iters):
            r = self.backward(v) - u  # M x 2
            jx = (self.backward(v + [eps, 0]) - self.backward(v - [eps, 0])) / (2 * eps)
            jy = (self.backward(v + [0, eps]) - self.backward(v - [0, eps])) / (2 * eps)
            jac = np.stack([jx, jy], axis=2)  # M x 2 x 2: d u / d (vx, vy)
            v = v - np.linalg.solve(jac, r[..., None])[..., 0]
            if np.abs(r).max() < 1e-6:
                break
        return v

    def render(self, image: np.ndarray) -> np.ndarray:
        """The warped image: H x W x 3 uint8 (``size``), zeros where the source is left."""
        h, w = self.size
        ys, xs = np.mgrid[0:h, 0:w]
        grid = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
        u = self.backward(grid).astype(np.float32).reshape(h, w, 2)
        return cv2.remap(
            image, u[..., 0], u[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )


def _sq_dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)  # M x K


def random_warp(
    rng: np.random.Generator,
    size,
    homography: float = 0.15,
    tps_grid: int = 3,
    tps: float = 0.05,
    src_size=None,
) -> Warp:
    """A random warp from a ``size`` (h, w) warped image to a ``src_size`` source (default same).

    Args:
        homography: each source corner moves by up to this fraction of the side.
        tps_grid: TPS control points on a tps_grid x tps_grid lattice over the warped image.
        tps: each control point moves by up to this fraction of the side (0: a pure homography).
    """
    h, w = size
    sh, sw = src_size or size
    corners = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    src = np.array([[0, 0], [sw - 1, 0], [sw - 1, sh - 1], [0, sh - 1]], np.float32)
    src = src + rng.uniform(-homography, homography, (4, 2)) * [sw, sh]
    hom = cv2.getPerspectiveTransform(corners, src.astype(np.float32))  # warped -> source
    t = np.linspace(0, 1, tps_grid)
    ctrl = np.stack(np.meshgrid(t * (w - 1), t * (h - 1)), -1).reshape(-1, 2)
    offsets = rng.uniform(-tps, tps, ctrl.shape) * [w, h]
    return Warp(hom, ctrl, offsets, (h, w))
