"""Reading dense maps at sub-pixel image points (bilinear), shared by the heads and the matcher."""

import torch
import torch.nn.functional as F

__all__ = ["sample_at", "location_centres"]


def sample_at(maps: torch.Tensor, points: torch.Tensor, image_size) -> torch.Tensor:
    """Bilinear values of ``maps`` at image points.

    A map of size h x w covers the H x W image: location (i, j) is centred on image pixel
    ((j + 0.5) W / w - 0.5, (i + 0.5) H / h - 0.5), grid_sample's ``align_corners=False`` rule.

    Args:
        maps: N x C x h x w.
        points: N x P x 2 (x, y) in 0-based image pixels.
        image_size: (H, W) of the image the points are in.
    Returns:
        N x P x C.
    """
    h, w = image_size
    scale = points.new_tensor([2.0 / w, 2.0 / h])
    grid = (points + 0.5) * scale - 1  # N x P x 2 in [-1, 1]
    out = F.grid_sample(maps, grid[:, :, None, :], mode="bilinear", align_corners=False)
    return out[..., 0].transpose(1, 2)  # N x P x C


def location_centres(map_size, image_size, device=None) -> torch.Tensor:
    """Image points of the h x w map locations, row-major: (h * w) x 2 (x, y)."""
    h, w = map_size
    ih, iw = image_size
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) * ih / h - 0.5
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) * iw / w - 0.5
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)
