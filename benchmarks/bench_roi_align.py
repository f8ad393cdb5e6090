#!/usr/bin/env python
"""RoIAlign's input gradient on CPU: torchvision's kernel against insloc's separable one.

    python benchmarks/bench_roi_align.py [--repeats 5]

For the shapes of the protocol's box heads (R50-C4: res4, 1024 channels, 14 x 14 bins; R50-FPN: a
256-channel level, 7 x 7 bins; 512 RoIs per image) and of InsLoc's pooling, the time of one
backward pass (median of ``--repeats``) of ``torchvision.ops.roi_align`` and of
``insloc.modeling.roi_align.roi_align``, their ratio, and the largest difference between the two
gradients relative to the largest gradient. Forward passes are the same op (torchvision's) and are
not timed. Nothing here is asserted: the figures are for docs/benchmarks.md.
"""

import argparse
import statistics
import time

import torch
from torchvision.ops import roi_align as tv_roi_align

from insloc.modeling.roi_align import roi_align

# name: (images, channels, map side (H, W), stride, RoIs per image, bins, image side)
CASES = {
    "R50-C4 box head, 384 px": (1, 1024, (24, 24), 16, 512, 14, 384),
    "R50-C4 box head, 800 x 1333": (1, 1024, (50, 84), 16, 512, 14, 800),
    "R50-FPN box head P2, 384 px": (2, 256, (96, 96), 4, 512, 7, 384),
    "R50-FPN box head P3, 800 x 1333": (2, 256, (100, 167), 8, 256, 7, 800),
    "InsLoc R50-C4 pretraining, batch 32": (32, 1024, (16, 16), 16, 1, 14, 256),
}


def random_rois(images, per_image, side, generator) -> torch.Tensor:
    """Boxes of 1 to side/2 pixels anywhere on (and a little past) the image."""
    k = images * per_image
    xy = torch.rand(k, 2, generator=generator) * side - 20
    wh = torch.rand(k, 2, generator=generator) * side / 2 + 1
    index = torch.arange(images).repeat_interleave(per_image)[:, None].float()
    return torch.cat([index, xy, xy + wh], 1)  # K x 5


def backward_ms(fn, x, rois, bins, scale, repeats) -> tuple:
    times = []
    for _ in range(repeats + 1):  # the first: warm-up
        x.grad = None
        out = fn(x, rois, bins, scale, 0, True)
        start = time.perf_counter()
        out.backward(torch.ones_like(out))
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]) * 1000, x.grad.clone()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed backward passes per op")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, CPU")
    for name, (n, c, (h, w), stride, per_image, bins, side) in CASES.items():
        g = torch.Generator().manual_seed(0)
        x = torch.randn(n, c, h, w, generator=g, requires_grad=True)
        rois = random_rois(n, per_image, side, g)
        theirs, ref = backward_ms(tv_roi_align, x, rois, bins, 1 / stride, args.repeats)
        ours, grad = backward_ms(roi_align, x, rois, bins, 1 / stride, args.repeats)
        err = ((grad - ref).abs().max() / ref.abs().max()).item()
        print(
            f"  {name:<38} torchvision {theirs:8.1f} ms  insloc {ours:7.1f} ms  "
            f"{theirs / ours:5.1f}x faster  max |diff| / max |grad| {err:.1e}"
        )


if __name__ == "__main__":
    main()
