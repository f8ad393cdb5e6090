"""Detections drawn on their images (boxes, masks, class names and scores), saved as a PNG grid."""

import math
import os

import cv2
import numpy as np

__all__ = ["draw_detections", "save_image_grid"]


def _colour(i: int) -> tuple:
    """A distinct, saturated BGR colour per class index."""
    hsv = np.uint8([[[(i * 37) % 180, 220, 230]]])
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0])


def draw_detections(image, output: dict, class_names, score_thresh: float = 0.5) -> np.ndarray:
    """Draw one image's detections.

    Args:
        image: H x W x 3 uint8 RGB, the image the detections' coordinates refer to.
        output: "boxes" (N x 4 XYXY), "scores" (N), "classes" (N), optional "masks" (N x H x W
            bool), as tensors or arrays.
        class_names: name of each class index.
        score_thresh: detections below it are not drawn.
    Returns:
        H x W x 3 uint8 BGR image.
    """
    canvas = np.ascontiguousarray(np.asarray(image)[:, :, ::-1]).copy()
    boxes, scores, classes = (np.asarray(output[k]) for k in ("boxes", "scores", "classes"))
    masks = np.asarray(output["masks"]) if output.get("masks") is not None else None
    keep = np.flatnonzero(scores >= score_thresh)
    for i in keep[np.argsort(scores[keep])]:  # highest score drawn last, on top
        colour = _colour(int(classes[i]))
        if masks is not None:
            region = masks[i].astype(bool)
            canvas[region] = (0.5 * canvas[region] + 0.5 * np.array(colour)).astype(np.uint8)
        x1, y1, x2, y2 = (int(round(float(v))) for v in boxes[i])
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, 1)
        label = f"{class_names[int(classes[i])]} {scores[i]:.2f}"
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.35, 1)
        y = max(th + 2, y1)
        cv2.rectangle(canvas, (x1, y - th - 2), (x1 + tw + 2, y), colour, -1)
        cv2.putText(canvas, label, (x1 + 1, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.35, (0, 0, 0), 1)
    return canvas


def save_image_grid(images, path: str, gap: int = 6) -> str:
    """Write BGR images side by side in a near-square grid (white gaps) as a PNG; returns path."""
    if not images:
        raise ValueError("save_image_grid: no images to draw")
    cell_h = max(im.shape[0] for im in images) + gap
    cell_w = max(im.shape[1] for im in images) + gap
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    grid = np.full((rows * cell_h, cols * cell_w, 3), 255, np.uint8)
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        grid[r * cell_h : r * cell_h + im.shape[0], c * cell_w : c * cell_w + im.shape[1]] = im
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(path, grid):
        raise OSError(f"could not write the image grid to {path}")
    return path
