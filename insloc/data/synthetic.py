"""Synthetic scenes: textured backgrounds with coloured shapes and exact boxes, masks and labels.

They let the whole pipeline (pretraining, then detection fine-tuning and evaluation) run in tests
and demos without any dataset on disk. A scene depends only on ``(seed, i)``, not on global state.
"""

import math

import cv2
import numpy as np

__all__ = ["CLASS_NAMES", "SyntheticScenes"]

CLASS_NAMES = ("rectangle", "ellipse", "triangle", "star", "hexagon")


class SyntheticScenes:
    """An indexable set of synthetic scenes.

    Shapes are painted in order, so a later shape occludes earlier ones; each mask is the visible
    part of its shape, each box the tight box of that mask, and shapes left with no visible pixel
    are dropped (every scene keeps at least the last shape painted).

    Args:
        num_images: number of scenes.
        image_size: side of the square scenes in pixels.
        seed: scene ``i`` is drawn from ``SeedSequence([seed, i])``.
        max_objects: shapes per scene are drawn uniformly in [1, max_objects].
    """

    def __init__(self, num_images: int, image_size: int, seed: int = 0, max_objects: int = 6):
        if num_images <= 0 or image_size < 16 or max_objects < 1:
            raise ValueError(
                f"SyntheticScenes needs num_images > 0, image_size >= 16 and max_objects >= 1; "
                f"got {num_images}, {image_size}, {max_objects}"
            )
        self.num_images = num_images
        self.image_size = image_size
        self.seed = seed
        self.max_objects = max_objects

    def __len__(self) -> int:
        return self.num_images

    def __getitem__(self, i: int) -> dict:
        """Scene ``i``.

        Returns:
            dict with ``image`` (H x W x 3 uint8 RGB), ``boxes`` (N x 4 float32 XYXY pixels, x2 and
            y2 exclusive: the box of a one-pixel mask at (x, y) is [x, y, x + 1, y + 1]), ``masks``
            (N x H x W bool) and ``labels`` (N int64 indices into CLASS_NAMES).
        """
        if not 0 <= i < self.num_images:
            raise IndexError(f"scene {i} out of range for {self.num_images} scenes")
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, i])))
        image = self._background(rng)
        size = self.image_size
        ids = np.zeros((size, size), np.uint8)  # 0: background, j + 1: shape j
        num = int(rng.integers(1, self.max_objects + 1))
        kinds = rng.integers(len(CLASS_NAMES), size=num)
        for j, kind in enumerate(kinds):
            self._draw_shape(ids, int(kind), j + 1, rng)
        colors = rng.integers(0, 256, size=(num, 2, 3)).astype(np.uint8)
        textured = rng.random(num) < 0.5
        stripes = rng.uniform(0.03, 0.12, size=(num, 2)) * size  # period (pixels), then angle below
        angles = rng.uniform(0, math.pi, size=num)

        masks = ids[None] == np.arange(1, num + 1, dtype=np.uint8)[:, None, None]  # num x H x W
        visible = masks.any(axis=(1, 2))
        boxes = np.zeros((num, 4), np.float32)
        for j in np.flatnonzero(visible):
            rows = np.flatnonzero(masks[j].any(axis=1))
            cols = np.flatnonzero(masks[j].any(axis=0))
            y1, y2, x1, x2 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            boxes[j] = (x1, y1, x2, y2)
            region = masks[j, y1:y2, x1:x2]
            fill = np.broadcast_to(colors[j, 0], (y2 - y1, x2 - x1, 3))
            if textured[j]:
                # Stripes of a second colour, so shapes are not only flat colour blobs.
                yy, xx = np.mgrid[y1:y2, x1:x2].astype(np.float32)
                phase = (math.cos(angles[j]) * xx + math.sin(angles[j]) * yy) / stripes[j, 0]
                mix = (np.sin(2 * math.pi * phase) > 0)[:, :, None]
                fill = np.where(mix, colors[j, 1], colors[j, 0])
            image[y1:y2, x1:x2][region] = fill[region]
        keep = np.flatnonzero(visible)
        return {
            "image": image,
            "boxes": boxes[keep],
            "masks": masks[keep],
            "labels": kinds[keep].astype(np.int64),
        }

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        """Gradient + sinusoid stripes + blotchy noise, H x W x 3 uint8."""
        size = self.image_size
        c0, c1 = rng.uniform(0, 255, size=(2, 3))
        theta, phi, phase = rng.uniform(0, 2 * math.pi, size=3)
        freq = rng.uniform(2, 12)
        amplitude = rng.uniform(0, 40, size=3)
        t = np.arange(size, dtype=np.float32) / size
        # Both patterns are functions of x and y that separate into outer products of 1-D ramps,
        # which keeps a 256 x 256 background well under a millisecond.
        ramp = ((np.add.outer(math.sin(theta) * t, math.cos(theta) * t) + 1.5) / 3.0).astype(
            np.float32
        )
        wx = (2 * math.pi * freq * math.cos(phi)) * t + phase
        wy = (2 * math.pi * freq * math.sin(phi)) * t
        wave = (np.outer(np.cos(wy), np.sin(wx)) + np.outer(np.sin(wy), np.cos(wx))).astype(
            np.float32
        )
        channels = [
            cv2.addWeighted(ramp, float(c1[k] - c0[k]), wave, float(amplitude[k]), float(c0[k]))
            for k in range(3)
        ]
        image = cv2.merge(channels)
        cells = max(2, size // 16)
        coarse = rng.normal(0, 20, size=(cells, cells, 3)).astype(np.float32)
        image += cv2.resize(coarse, (size, size), interpolation=cv2.INTER_LINEAR)
        return np.clip(image, 0, 255).astype(np.uint8)

    def _draw_shape(self, ids: np.ndarray, kind: int, value: int, rng: np.random.Generator):
        size = self.image_size
        # At least ~6% of the side so that the last shape (never occluded) is always visible.
        radius = rng.uniform(0.06, 0.3) * size
        cx, cy = rng.uniform(0.1, 0.9, size=2) * size
        angle = rng.uniform(0, 2 * math.pi)
        aspect = rng.uniform(0.5, 1.0)
        name = CLASS_NAMES[kind]
        if name == "ellipse":
            axes = (max(1, int(radius)), max(1, int(radius * aspect)))
            cv2.ellipse(ids, (int(cx), int(cy)), axes, math.degrees(angle), 0, 360, value, -1)
            return
        if name == "rectangle":
            t = np.array([0.25, 0.75, 1.25, 1.75]) * math.pi
            r = np.full(4, radius)
            stretch = np.array([1.0, aspect])
        elif name == "triangle":
            t = np.array([0.0, 2 / 3, 4 / 3]) * math.pi + rng.uniform(-0.3, 0.3, size=3)
            r = np.full(3, radius)
            stretch = np.array([1.0, 1.0])
        elif name == "star":
            t = np.arange(10) * (math.pi / 5)
            r = np.where(np.arange(10) % 2 == 0, radius, radius * 0.45)
            stretch = np.array([1.0, 1.0])
        else:  # hexagon
            t = np.arange(6) * (math.pi / 3)
            r = np.full(6, radius)
            stretch = np.array([1.0, aspect])
        local = np.stack([np.cos(t) * r, np.sin(t) * r], axis=1) * stretch
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        points = local @ rot.T + (cx, cy)
        cv2.fillPoly(ids, [np.round(points).astype(np.int32)], value)
