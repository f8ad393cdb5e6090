"""Source and target side by side with transferred keypoints (green correct, red wrong) and the
target's sigma map, as one PNG."""

import cv2
import numpy as np

__all__ = ["draw_matches"]


def _fit(image: np.ndarray, height: int) -> tuple:
    scale = height / image.shape[0]
    return cv2.resize(image, (max(1, round(image.shape[1] * scale)), height)), scale


def draw_matches(pair: dict, pred: np.ndarray, correct: np.ndarray, sigma=None, height=300):
    """Args: pair (a PairDataset item), pred K x 2 in target pixels, correct K bool (NaN
    predictions count as wrong), sigma h x w or None. Returns an RGB uint8 image."""
    src, s_scale = _fit(pair["src_image"], height)
    trg, t_scale = _fit(pair["trg_image"], height)
    panels = [src, trg]
    if sigma is not None:
        norm = (sigma - sigma.min()) / max(float(sigma.max() - sigma.min()), 1e-12)
        heat = cv2.applyColorMap((255 * norm).astype(np.uint8), cv2.COLORMAP_VIRIDIS)
        panels.append(
            cv2.resize(heat[..., ::-1], (trg.shape[1], height), interpolation=cv2.INTER_NEAREST)
        )
    canvas = np.ascontiguousarray(np.concatenate(panels, axis=1))
    offset = src.shape[1]
    for p, q, ok in zip(pair["src_kps"], pred, correct):
        if not (np.isfinite(p).all() and np.isfinite(q).all()):
            continue
        color = (0, 200, 0) if ok else (230, 0, 0)
        a = tuple(int(round(v)) for v in p * s_scale)
        b = (int(round(q[0] * t_scale)) + offset, int(round(q[1] * t_scale)))
        cv2.circle(canvas, a, 4, color, -1, cv2.LINE_AA)
        cv2.circle(canvas, b, 4, color, -1, cv2.LINE_AA)
        cv2.line(canvas, a, b, color, 1, cv2.LINE_AA)
    return canvas
