#!/usr/bin/env python
"""Pretraining throughput, side by side in one run: data pipelines, train steps, peak memory.

    python benchmarks/bench_pretrain.py [--images DIR] [--workers 2] [--batch 32] [--step-batch 8]

1. images/s of the InsLoc pipeline (copy-paste on a 256 canvas + anchor box augmentation), with
   the official backgrounds (two more images decoded per sample) and with backgrounds taken from
   the batch, and of the MoCo v2 two-crop pipeline (224), on the same real images with the same
   number of workers.
2. Train-step time (forward, backward, SGD) of InsLoc R50-C4, InsLoc R50-FPN and MoCo v2 R50 with
   the official recipes (full ResNet-50, queues of 65536) on batches of the same size, and their
   peak memory (CUDA: max allocated; CPU: peak resident set of a fresh process per model).
Nothing here is asserted: the figures and ratios are for docs/benchmarks.md and the release notes.
"""

import argparse
import multiprocessing as mp
import os
import resource
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = {
    "InsLoc R50-C4": "configs/pretrain/insloc_R50_C4_200ep.yaml",
    "InsLoc R50-FPN": "configs/pretrain/insloc_R50_FPN_200ep.yaml",
    "MoCo v2 R50": "configs/pretrain/moco_v2_R50_200ep.yaml",
}


def default_images() -> str:
    try:
        import skimage

        return skimage.data.data_dir
    except ImportError:
        return os.path.join(ROOT, "..", "shared", "data", "PF-WILLOW")


def recipe(name, *opts):
    from insloc.config import load_config

    return load_config(os.path.join(ROOT, RECIPES[name]), [str(o) for o in opts])


def pipeline_images_per_sec(cfg, batches: int) -> float:
    from insloc.data import build_pretrain_dataset, build_pretrain_loader

    loader = build_pretrain_loader(cfg, build_pretrain_dataset(cfg))
    it = iter(loader)
    for _ in range(2):  # worker start-up and first batches
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    elapsed = time.perf_counter() - start
    del it, loader
    return batches * cfg.SOLVER.IMS_PER_BATCH / elapsed


def step_time(name, images, batch, steps, device, result_queue=None):
    """Seconds per train step of one recipe and its peak memory in MB."""
    from torch.utils.data import default_collate

    from insloc.data import build_pretrain_dataset
    from insloc.engine.optim import build_optimizer
    from insloc.modeling import build_model

    torch.manual_seed(0)
    opts = ["DATASETS.PRETRAIN", images, "SOLVER.IMS_PER_BATCH", batch, "MODEL.DEVICE", device]
    cfg = recipe(name, *opts)
    dataset = build_pretrain_dataset(cfg)
    data = default_collate([dataset[(0, i % len(dataset.source))] for i in range(batch)])
    dev = torch.device(device)
    model = build_model(cfg).to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
        torch.cuda.reset_peak_memory_stats()
    opt = build_optimizer(cfg, model)
    data = {k: v.to(dev) for k, v in data.items() if isinstance(v, torch.Tensor)}
    times = []
    for i in range(steps + 2):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = model(data)
        loss = sum(v for k, v in out.items() if k.startswith("loss"))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:  # warm-up steps excluded
            times.append(time.perf_counter() - t)
    if dev.type == "cuda":
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = (sorted(times)[len(times) // 2], peak)
    if result_queue is not None:
        result_queue.put(result)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", default=default_images(), help="a folder of real images")
    parser.add_argument("--workers", type=int, default=2, help="data workers for both pipelines")
    parser.add_argument("--batch", type=int, default=16, help="pipeline batch size")
    parser.add_argument("--batches", type=int, default=40, help="pipeline batches measured")
    parser.add_argument("--step-batch", type=int, default=8, help="train-step batch size")
    parser.add_argument("--steps", type=int, default=3, help="train steps measured (after 2)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--skip-steps", action="store_true", help="only the data pipelines")
    args = parser.parse_args()
    images = os.path.abspath(args.images)
    print(
        f"images: {images}  workers: {args.workers}  device: {args.device}  "
        f"torch {torch.__version__}  threads {torch.get_num_threads()}"
    )

    print("\n== data pipelines (images/s, same images, same workers) ==")
    common = [
        "DATASETS.PRETRAIN",
        images,
        "SOLVER.IMS_PER_BATCH",
        args.batch,
        "DATALOADER.NUM_WORKERS",
        args.workers,
    ]
    rates = {}
    pipelines = [
        (
            "InsLoc (official backgrounds)",
            "InsLoc R50-FPN",
            ["INPUT.COPY_PASTE.BACKGROUNDS", "dataset"],
        ),
        ("InsLoc (batch backgrounds)", "InsLoc R50-FPN", ["INPUT.COPY_PASTE.BACKGROUNDS", "batch"]),
        ("MoCo v2 two-crop", "MoCo v2 R50", []),
    ]
    for label, name, extra in pipelines:
        rates[label] = pipeline_images_per_sec(recipe(name, *common, *extra), args.batches)
        print(f"  {label:<31} {rates[label]:8.1f} images/s")
    for label, _, _ in pipelines[:2]:
        ratio = rates[label] / rates["MoCo v2 two-crop"]
        print(f"  ratio {label} / MoCo v2: {ratio:.2f}  (goal >= 0.8)")

    if args.skip_steps:
        return
    print(f"\n== train steps (batch {args.step_batch}, official recipes, {args.device}) ==")
    results = {}
    ctx = mp.get_context("spawn")
    for name in RECIPES:
        if args.device == "cpu":  # a fresh process per model, so each peak RSS is its own
            q = ctx.Queue()
            p = ctx.Process(
                target=step_time, args=(name, images, args.step_batch, args.steps, args.device, q)
            )
            p.start()
            results[name] = q.get()
            p.join()
        else:
            results[name] = step_time(name, images, args.step_batch, args.steps, args.device)
        sec, peak = results[name]
        print(f"  {name:<16} {sec * 1000:9.1f} ms/step   peak memory {peak:8.0f} MB")
    base = results["MoCo v2 R50"][0]
    for name in ("InsLoc R50-C4", "InsLoc R50-FPN"):
        print(f"  ratio {name} / MoCo v2: {results[name][0] / base:.2f}  (goal <= 1.3)")


if __name__ == "__main__":
    sys.exit(main())
