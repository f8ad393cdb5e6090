#!/usr/bin/env python
"""Pretraining throughput, side by side in one run: data pipelines, train steps, peak memory.

    python benchmarks/bench_pretrain.py [--images DIR] [--workers 2] [--batch 16] [--step-batch 8]
    python benchmarks/bench_pretrain.py --profile [--images DIR]   # per-stage table only

1. images/s of the InsLoc pipeline (copy-paste on a 256 canvas + anchor box augmentation), with
   the official backgrounds (two more images decoded per sample) and with backgrounds taken from
   the batch, and of the MoCo v2 two-crop pipeline (224), on the same real images with the same
   number of workers; with ``--reference`` also of the reference MoCo v2 loader
   (facebookresearch/moco's ``main_moco.py --aug-plus``: PIL and torchvision transforms).
2. Train-step time (forward, backward, SGD) of InsLoc R50-C4, InsLoc R50-FPN and MoCo v2 R50 with
   the official recipes (full ResNet-50, queues of 65536) on batches of the same size, and their
   peak memory (CUDA: max allocated; CPU: peak resident set of a fresh process per model).
3. With ``--profile``: where one sample's time goes, stage by stage (decode of the foreground and
   of each background, resizes, crop/paste, anchor IoU/NMS, colour jitter, grayscale, blur, flip,
   to-tensor), in one process with both datasets interleaved sample by sample.
Nothing here is asserted: the figures and ratios are for docs/benchmarks.md and the release notes.
"""

import argparse
import contextlib
import functools
import multiprocessing as mp
import os
import resource
import statistics
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


def loader_images_per_sec(loader, batch: int, batches: int) -> float:
    """Images per second of ``batches`` batches of ``batch``, after two (worker start-up)."""
    it = iter(loader)
    for _ in range(2):  # worker start-up and first batches
        next(it)
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    elapsed = time.perf_counter() - start
    del it
    return batches * batch / elapsed


def pipeline_images_per_sec(cfg, batches: int) -> float:
    from insloc.data import build_pretrain_dataset, build_pretrain_loader

    loader = build_pretrain_loader(cfg, build_pretrain_dataset(cfg))
    return loader_images_per_sec(loader, cfg.SOLVER.IMS_PER_BATCH, batches)


class ReferenceMoCoV2(torch.utils.data.Dataset):
    """The reference implementation's MoCo v2 loader (facebookresearch/moco, ``main_moco.py
    --aug-plus``): PIL decode and torchvision's transforms, two crops per image. Not insloc's:
    it is measured as the code a MoCo v2 user runs today."""

    def __init__(self, files):
        from PIL import ImageFilter
        from torchvision import transforms as T

        def blur(image):  # the reference's GaussianBlur([.1, 2.])
            radius = float(torch.empty(1).uniform_(0.1, 2.0))
            return image.filter(ImageFilter.GaussianBlur(radius=radius))

        self.files = files
        self.augment = T.Compose(
            [
                T.RandomResizedCrop(224, scale=(0.2, 1.0)),
                T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
                T.RandomGrayscale(p=0.2),
                T.RandomApply([blur], p=0.5),
                T.RandomHorizontalFlip(),
                T.ToTensor(),
                T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
            ]
        )

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from PIL import Image

        with open(self.files[i], "rb") as f:
            image = Image.open(f).convert("RGB")
        return self.augment(image), self.augment(image)


def reference_images_per_sec(images: str, batch: int, workers: int, batches: int) -> float:
    from insloc.data.sources import FileImageSource

    source = FileImageSource.from_folder(images)
    files = [source.name(i) for i in range(len(source))]  # full paths
    sampler = torch.utils.data.RandomSampler(files, replacement=True, num_samples=10**9)
    loader = torch.utils.data.DataLoader(
        ReferenceMoCoV2(files), batch, sampler=sampler, num_workers=workers, drop_last=True
    )
    return loader_images_per_sec(loader, batch, batches)


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


# -- per-stage profile ---------------------------------------------------------------------------
# (module, attribute, stage): the functions a sample's time is split into. A stage called inside
# another one counts for the outer one (to_grayscale inside the jitter's saturation is jitter).
# Attributes a version of the library lacks are skipped, so the same table profiles older code.
STAGES = [
    ("insloc.data.datasets", "_canvas", "resize backgrounds"),
    ("insloc.data.datasets", "crop_resize", "crop + resize foreground"),
    ("insloc.data.datasets", "paste", "paste"),
    ("insloc.data.datasets", "hflip", "flip"),
    ("insloc.data.datasets", "_to_chw", "to tensor"),
    ("insloc.data.datasets", "sample_paste_plan", "plan (crop, size, position)"),
    ("insloc.data.datasets", "sample_crop", "plan (crop, size, position)"),
    ("insloc.data.datasets", "sample_rng", "sample generator"),
    ("insloc.data.color.ColorAugmentation", "_jitter", "colour jitter"),
    ("insloc.data.color", "to_grayscale", "grayscale"),
    ("insloc.data.color", "gaussian_blur", "blur"),
    ("insloc.data.anchor_aug.AnchorBoxSampler", "__call__", "anchor IoU + NMS"),
]


class StageTimer:
    """Seconds per stage, summed over samples; only the outermost timed call counts."""

    def __init__(self):
        self.seconds, self.active, self.decode_kind = {}, False, "decode background"

    def wrap(self, fn, stage):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            if self.active:
                return fn(*args, **kwargs)
            name = stage() if callable(stage) else stage
            self.active, start = True, time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.active = False
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

        return timed

    @contextlib.contextmanager
    def decoding(self, kind):
        """Decodes inside this block are ``kind`` (the foreground's, not a background's)."""
        previous, self.decode_kind = self.decode_kind, kind
        try:
            yield
        finally:
            self.decode_kind = previous


def _install_stage_timers(timer, datasets) -> None:
    import importlib

    for path, attr, stage in STAGES:
        try:
            owner = importlib.import_module(path)
        except ModuleNotFoundError:  # a class: module path + class name
            module, _, name = path.rpartition(".")
            owner = getattr(importlib.import_module(module), name)
        if hasattr(owner, attr):
            setattr(owner, attr, timer.wrap(getattr(owner, attr), stage))
    blur_owner = importlib.import_module("insloc.data.color")
    if not hasattr(blur_owner, "gaussian_blur"):  # older code calls cv2.GaussianBlur directly
        import types

        import cv2

        proxy = types.SimpleNamespace(**{k: getattr(cv2, k) for k in dir(cv2)})
        proxy.GaussianBlur = timer.wrap(cv2.GaussianBlur, "blur")
        blur_owner.cv2 = proxy
    for ds in datasets:
        src = ds.source
        src.size = timer.wrap(src.size, "header (size, orientation)")
        src.load = timer.wrap(src.load, lambda: timer.decode_kind)
        if hasattr(ds, "_load_foreground"):
            fg = ds._load_foreground

            def load_foreground(*args, _fg=fg, **kwargs):
                with timer.decoding("decode foreground"):
                    return _fg(*args, **kwargs)

            ds._load_foreground = load_foreground


def profile_pipelines(images: str, samples: int, rounds: int = 3) -> dict:
    """ms per sample of each stage for the InsLoc (official backgrounds) and MoCo v2 datasets,
    built in this process and interleaved sample by sample; the median of ``rounds`` rounds."""
    import cv2

    from insloc.data import build_pretrain_dataset

    cv2.setNumThreads(1)
    datasets = {
        "InsLoc (official backgrounds)": build_pretrain_dataset(
            recipe("InsLoc R50-FPN", "DATASETS.PRETRAIN", images)
        ),
        "MoCo v2 two-crop": build_pretrain_dataset(
            recipe("MoCo v2 R50", "DATASETS.PRETRAIN", images)
        ),
    }
    timer = StageTimer()  # one set of wrappers; its ``seconds`` is the current dataset's
    _install_stage_timers(timer, datasets.values())
    per_round = {label: [] for label in datasets}
    for r in range(rounds + 1):  # round 0 warms caches up and is dropped
        seconds = {label: {} for label in datasets}
        totals = {label: 0.0 for label in datasets}
        for i in range(samples):
            for label, ds in datasets.items():
                timer.seconds = seconds[label]
                # MoCo's one decode is its foreground; InsLoc's are named by _load_foreground
                kind = "decode foreground" if label.startswith("MoCo") else "decode background"
                start = time.perf_counter()
                with timer.decoding(kind):
                    ds[(r, i % len(ds))]
                totals[label] += time.perf_counter() - start
        if r:
            for label in datasets:
                stages = {k: v * 1000 / samples for k, v in seconds[label].items()}
                stages["total"] = totals[label] * 1000 / samples
                stages["other (rng, bookkeeping)"] = stages["total"] - sum(
                    v for k, v in stages.items() if k != "total"
                )
                per_round[label].append(stages)
    return per_round


def print_profile(per_round: dict) -> None:
    labels = list(per_round)
    names = []
    for label in labels:
        for stages in per_round[label]:
            names += [k for k in stages if k not in names and k != "total"]
    names.append("total")
    head = "".join(f" | {label} ms (min-max)" for label in labels)
    print(f"| stage{head} |")
    print("|---" * (len(labels) + 1) + "|")
    for name in names:
        cells = []
        for label in labels:
            values = [stages.get(name, 0.0) for stages in per_round[label]]
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    ins, moco = (statistics.median(s["total"] for s in per_round[label]) for label in labels)
    print(f"samples/s ratio InsLoc (official) / MoCo v2, one process: {moco / ins:.2f}")


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


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
    parser.add_argument("--rounds", type=int, default=3, help="pipeline rounds (median printed)")
    parser.add_argument(
        "--reference", action="store_true",
        help="also the reference MoCo v2 loader (facebookresearch/moco: PIL, torchvision)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=int, nargs="?", const=150, default=0, metavar="SAMPLES",
        help="only the per-stage profile, over SAMPLES samples of each dataset per round",
    )  # fmt: skip
    args = parser.parse_args()
    images = os.path.abspath(args.images)
    print(
        f"images: {images}  workers: {args.workers}  device: {args.device}  "
        f"torch {torch.__version__}  threads {torch.get_num_threads()}"
    )

    if args.profile:
        print(f"\n== per-stage profile (ms per sample, one process, load {_load()}) ==")
        print_profile(profile_pipelines(images, args.profile, args.rounds))
        print(f"load average after: {_load()}")
        return
    print(f"\n== data pipelines (images/s, same images, same workers; load {_load()}) ==")
    common = [
        "DATASETS.PRETRAIN",
        images,
        "SOLVER.IMS_PER_BATCH",
        args.batch,
        "DATALOADER.NUM_WORKERS",
        args.workers,
    ]
    pipelines = [
        (
            "InsLoc (official backgrounds)",
            "InsLoc R50-FPN",
            ["INPUT.COPY_PASTE.BACKGROUNDS", "dataset"],
        ),
        ("InsLoc (batch backgrounds)", "InsLoc R50-FPN", ["INPUT.COPY_PASTE.BACKGROUNDS", "batch"]),
        ("MoCo v2 two-crop", "MoCo v2 R50", []),
    ]
    # Rounds of the three pipelines one after the other: the machine's load drifts, and each
    # round's ratio compares pipelines measured minutes apart at most.
    reference = "MoCo v2, reference code"  # facebookresearch/moco's loader, not insloc's
    rates = {label: [] for label, _, _ in pipelines}
    if args.reference:
        rates[reference] = []
    for _ in range(args.rounds):
        for label, name, extra in pipelines:
            cfg = recipe(name, *common, *extra)
            rates[label].append(pipeline_images_per_sec(cfg, args.batches))
        if args.reference:
            rate = reference_images_per_sec(images, args.batch, args.workers, args.batches)
            rates[reference].append(rate)
    for label, r in rates.items():
        print(f"  {label:<31} {statistics.median(r):8.1f} images/s  ({min(r):.1f}-{max(r):.1f})")
    anchors = [("MoCo v2 two-crop", "MoCo v2", "  (goal >= 1.0)")]
    if args.reference:
        anchors.append((reference, "the reference MoCo v2 loader", ""))
    for anchor, anchor_name, goal in anchors:
        for label, _, _ in pipelines[:2]:
            ratios = [a / b for a, b in zip(rates[label], rates[anchor])]
            print(
                f"  ratio {label} / {anchor_name}: {statistics.median(ratios):.2f} median of "
                f"{len(ratios)} rounds ({min(ratios):.2f}-{max(ratios):.2f}){goal}"
            )
    print(f"  load average after: {_load()}")

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
