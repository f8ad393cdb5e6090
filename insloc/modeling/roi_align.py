"""RoIAlign: torchvision's op, with a faster input gradient on CPU.

torchvision's CPU backward of RoIAlign is one thread scattering four bilinear weights per sampling
point, channel by channel: for the R50-C4 box head (512 RoIs on a 1024-channel map) it is about a
sixth of a training step. Bilinear interpolation on a product grid of sampling points is separable,
so RoI k's output is ``A_k F A'_k^T`` per channel, with ``A_k`` (P x H) and ``A'_k`` (Q x W) the
sampling weights of its rows and columns, and its input gradient is ``A_k^T G_k A'_k``: two small
matrix products over the RoI's window of the map. The forward pass stays torchvision's (so outputs
are bit-identical to detectron2's, which calls the same op); the gradient equals torchvision's up to
float summation order (``tests/test_roi_align.py``). CUDA tensors use torchvision's op unchanged.
"""

import torch
from torch.autograd.function import once_differentiable
from torchvision.ops import roi_align as tv_roi_align

__all__ = ["roi_align"]


def roi_align(
    input: torch.Tensor,
    rois: torch.Tensor,
    output_size: int,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> torch.Tensor:
    """torchvision's ``roi_align`` (square output, ``rois`` K x 5: image index, x1, y1, x2, y2)."""
    if input.device.type == "cpu" and input.requires_grad and torch.is_grad_enabled():
        return _SeparableGradRoIAlign.apply(
            input, rois, output_size, spatial_scale, sampling_ratio, aligned
        )
    return tv_roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned)


class _SeparableGradRoIAlign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, rois, output_size, spatial_scale, sampling_ratio, aligned):
        ctx.save_for_backward(rois)
        ctx.args = (input.shape, input.dtype, output_size, spatial_scale, sampling_ratio, aligned)
        with torch.no_grad():
            return tv_roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output):
        (rois,) = ctx.saved_tensors
        shape, dtype, size, scale, ratio, aligned = ctx.args
        grad = roi_align_input_grad(grad_output, rois, shape, size, scale, ratio, aligned)
        return grad.to(dtype), None, None, None, None, None


def roi_align_input_grad(
    grad_output, rois, shape, output_size, spatial_scale, sampling_ratio, aligned
):
    """Gradient of RoIAlign's input: sum over RoIs k of ``A_k^T G_k A'_k``, window by window.

    Args:
        grad_output: K x C x P x P; rois: K x 5; shape: (N, C, H, W) of the input.
    Returns:
        N x C x H x W in float32 (float64 for a float64 input).
    """
    n, c, h, w = shape
    dtype = torch.float64 if grad_output.dtype == torch.float64 else torch.float32
    grad = torch.zeros(shape, dtype=dtype)
    if len(rois) == 0:
        return grad
    rows, cols = sampling_weights(rois, output_size, spatial_scale, sampling_ratio, aligned, h, w)
    rows, cols = rows.to(dtype), cols.to(dtype)  # K x P x H, K x P x W
    grad_output = grad_output.to(dtype)  # K x C x P x P
    p = output_size
    row_span, col_span = _support(rows), _support(cols)  # K x 2 each: first, last + 1
    image = rois[:, 0].long().tolist()
    for k, ((y0, y1), (x0, x1)) in enumerate(zip(row_span.tolist(), col_span.tolist())):
        if y1 <= y0 or x1 <= x0:
            continue  # no sampling point on the map: no gradient
        g = torch.mm(grad_output[k].reshape(c * p, p), cols[k, :, x0:x1])  # (C*P) x w_k
        g = torch.matmul(rows[k, :, y0:y1].t(), g.view(c, p, x1 - x0))  # C x h_k x w_k
        grad[image[k], :, y0:y1, x0:x1] += g
    return grad


def _support(weights: torch.Tensor) -> torch.Tensor:
    """K x B x S weights -> K x 2 (first, last + 1) of the positions with a nonzero weight."""
    used = (weights != 0).any(1)  # K x S
    size = used.shape[1]
    first = used.to(torch.uint8).argmax(1)  # K
    last = size - used.flip(1).to(torch.uint8).argmax(1)  # K
    return torch.stack([first, torch.where(used.any(1), last, first)], 1)


def sampling_weights(rois, output_size, spatial_scale, sampling_ratio, aligned, height, width):
    """RoIAlign's weights along each axis, as torchvision's kernel computes its sampling points.

    Returns:
        rows: K x P x H, cols: K x P x W. Output bin (i, j) of RoI k, channel c, is
        ``sum_{y, x} rows[k, i, y] * cols[k, j, x] * input[image_k, c, y, x]``: the bilinear weights
        of the bin's grid_h x grid_w sampling points, averaged (a point outside [-1, H] x [-1, W]
        contributes nothing).
    """
    dtype = torch.float64 if rois.dtype == torch.float64 else torch.float32
    offset = 0.5 if aligned else 0.0
    # the corners in double, then rounded to the op's type (the kernel's double spatial_scale)
    corners = (rois[:, 1:].double() * spatial_scale - offset).to(dtype)  # K x 4
    x1, y1, x2, y2 = corners.unbind(1)
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:  # legacy RoIAlign: RoIs of at least one pixel
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    rows = _axis_weights(y1, roi_h, output_size, sampling_ratio, height)
    cols = _axis_weights(x1, roi_w, output_size, sampling_ratio, width)
    return rows, cols


def _axis_weights(start, length, bins: int, sampling_ratio: int, size: int) -> torch.Tensor:
    """K x bins x size: the averaged bilinear weights of each bin's sampling points on one axis."""
    k = len(start)
    bin_size = length / bins  # K
    if sampling_ratio > 0:
        grid = torch.full((k,), sampling_ratio, dtype=torch.long)
    else:  # adaptive: ceil(RoI side / bins) points per bin
        grid = torch.ceil(bin_size).long()
    points = max(int(grid.max()), 1)
    i = torch.arange(bins, dtype=start.dtype)[None, :, None]  # 1 x bins x 1
    g = torch.arange(points, dtype=start.dtype)[None, None, :]  # 1 x 1 x G
    size_, grid_ = bin_size[:, None, None], grid.clamp(min=1).to(start.dtype)[:, None, None]
    # the kernel's expression, in its order: start + i * bin + (g + 0.5) * bin / grid
    pos = start[:, None, None] + i * size_ + (g + 0.5) * size_ / grid_  # K x bins x G
    used = (g < grid[:, None, None]) & (pos >= -1.0) & (pos <= size)  # K x bins x G
    pos = pos.clamp(min=0)
    low = pos.long()  # truncation, as the kernel's (int) cast
    top = low >= size - 1
    low = low.clamp(max=size - 1)
    high = torch.where(top, low, low + 1)
    frac = torch.where(top, torch.zeros_like(pos), pos - low.to(pos.dtype))
    scale = used.to(pos.dtype) / grid_  # K x bins x G
    weights = torch.zeros(k, bins, size, dtype=pos.dtype)  # low, high <= size - 1 (top: equal)
    weights.scatter_add_(2, low.reshape(k, bins, -1), ((1 - frac) * scale).reshape(k, bins, -1))
    weights.scatter_add_(2, high.reshape(k, bins, -1), (frac * scale).reshape(k, bins, -1))
    return weights
