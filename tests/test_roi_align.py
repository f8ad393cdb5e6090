"""insloc's RoIAlign: torchvision's forward, and on CPU a separable input gradient equal to
torchvision's kernel's."""

import pytest
import torch
from torchvision.ops import roi_align as tv_roi_align

from insloc.modeling.roi_align import roi_align

H, W = 13, 17


def _rois(dtype) -> torch.Tensor:
    """RoIs (image, x1, y1, x2, y2) in input pixels at stride 4 that reach every branch of the
    kernel: inside, across each border, past the -1 margin, on the last row and column, a single
    point, zero and negative sizes, and larger than the map."""
    g = torch.Generator().manual_seed(0)
    n = 40
    xy = torch.rand(n, 2, generator=g, dtype=dtype) * torch.tensor([W * 4, H * 4], dtype=dtype)
    wh = torch.rand(n, 2, generator=g, dtype=dtype) * 30
    random = torch.cat([torch.randint(0, 2, (n, 1), generator=g).to(dtype), xy - 8, xy + wh], 1)
    special = torch.tensor(
        [
            [0, -20, -20, 10, 10],  # across the top-left corner, points below -1
            [1, W * 4 - 6, H * 4 - 6, W * 4 + 30, H * 4 + 30],  # across the bottom-right corner
            [0, 5, 5, 5, 5],  # zero size
            [1, 9, 9, 3, 3],  # negative size
            [0, -100, -100, -50, -50],  # entirely outside
            [1, 0, 0, W * 4, H * 4],  # the whole map
            [0, -30, 2, W * 4 + 40, 40],  # wider than the map
            [1, 8, H * 4 - 2, 30, H * 4 - 1],  # on the last row
        ],
        dtype=dtype,
    )
    return torch.cat([random, special])


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
@pytest.mark.parametrize("output_size", [7, 4])
def test_same_output_and_input_gradient_as_torchvision(aligned, sampling_ratio, output_size):
    args = (output_size, 0.25, sampling_ratio, aligned)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        x = torch.randn(2, 5, H, W, dtype=dtype, requires_grad=True)
        rois = _rois(dtype)
        ref = tv_roi_align(x, rois, *args)
        (grad_ref,) = torch.autograd.grad(ref, x, ref.detach() * 3 + 1)
        out = roi_align(x, rois, *args)
        assert torch.equal(out, ref)  # torchvision's forward: bit-identical
        assert out.grad_fn is not None and out.grad_fn is not ref.grad_fn
        (grad,) = torch.autograd.grad(out, x, ref.detach() * 3 + 1)
        assert grad.dtype == dtype
        err = (grad - grad_ref).abs().max() / grad_ref.abs().max()
        assert err < tol, (dtype, err.item())


def test_gradient_matches_finite_differences():
    x = torch.randn(2, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor(
        [[0, -3, 1, 14, 9], [1, 2, 2, 26, 22], [0, 10, 10, 11, 11]], dtype=torch.float64
    )
    assert torch.autograd.gradcheck(lambda t: roi_align(t, rois, 3, 0.25, 0, True), (x,))


def test_empty_rois_and_no_grad_use_torchvision():
    x = torch.randn(1, 3, H, W, requires_grad=True)
    out = roi_align(x, torch.zeros(0, 5), 7, 0.25, 0, True)
    assert out.shape == (0, 3, 7, 7)
    out.sum().backward()
    assert torch.equal(x.grad, torch.zeros_like(x))
    x = torch.randn(2, 3, H, W, requires_grad=True)
    rois = _rois(torch.float32)
    with torch.no_grad():
        out = roi_align(x, rois, 7, 0.25, 0, True)
    assert out.grad_fn is None
    assert torch.equal(out, tv_roi_align(x, rois, 7, 0.25, 0, True))


def test_bfloat16_autocast_gives_an_input_gradient_of_the_input_type():
    x = torch.randn(2, 4, H, W).to(torch.bfloat16).requires_grad_()
    rois = _rois(torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = roi_align(x, rois, 7, 0.25, 0, True)
    out.float().sum().backward()
    assert x.grad.dtype == torch.bfloat16 and x.grad.abs().sum() > 0
