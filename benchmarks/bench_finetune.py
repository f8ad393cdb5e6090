#!/usr/bin/env python
"""Fine-tuning train steps side by side: our detectors vs torchvision's (and detectron2's).

    python benchmarks/bench_finetune.py [--coco ../shared/data/coco128] [--images 2] [--size 512]

Train-step time (forward, backward, SGD) and peak memory on the same real COCO images (resized to
a square ``--size``, their real boxes) with the same RoI batch (512 per image) of:
  - our R50-FPN Faster R-CNN (BN everywhere, freeze-at 0, 4conv1fc head: the architecture of
    torchvision's v2 detector),
  - torchvision's stock ``fasterrcnn_resnet50_fpn_v2`` (random init, trainable BN; its own
    defaults otherwise: two-conv RPN head, 2000 proposals per image after NMS),
  - our R50-C4 Faster R-CNN (MoCo's C4 protocol, BN instead of SyncBN in one process),
  - detectron2's R50-FPN and R50-C4 with the same settings, where detectron2 is importable
    (``detectron2_model``; it is not on PyPI).
Also images/s of the detection training loader (decode, resize to the COCO recipe's 640-800 short
side, flip, polygons) on coco128's JPEGs and on synthetic scenes, with ``--workers`` workers.
Step times: the models take turns step by step, ``--rounds`` rounds of one warm-up step and
``--steps`` measured steps each; printed are the median over rounds of each round's median and the
spread of the rounds, and each ratio is the median of the rounds' ratios. Peak memory is measured
in a fresh process per model (CUDA: max allocated; CPU: peak resident set). ``--profile`` prints
instead an op-level table (torch.profiler, self CPU time of one step) of ours against
detectron2's model of the same kind. Nothing here is asserted; the figures are for
docs/benchmarks.md.
"""

import argparse
import json
import multiprocessing as mp
import os
import resource
import sys
import time

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_images(coco: str, count: int, size: int):
    """The first ``count`` images of a COCO folder with at least one non-crowd box, resized to
    size x size; boxes XYXY in the resized pixels, classes contiguous 0..79."""
    from insloc.data.image_io import read_image

    with open(os.path.join(coco, "annotations", "instances_train2017.json")) as f:
        data = json.load(f)
    contiguous = {
        c["id"]: i for i, c in enumerate(sorted(data["categories"], key=lambda c: c["id"]))
    }
    by_image = {}
    for a in data["annotations"]:
        if not a["iscrowd"] and a["bbox"][2] > 1 and a["bbox"][3] > 1:
            by_image.setdefault(a["image_id"], []).append(a)
    samples = []
    for info in data["images"]:
        if info["id"] not in by_image:
            continue
        image = torch.from_numpy(read_image(os.path.join(coco, "train2017", info["file_name"])))
        image = image.permute(2, 0, 1)[None].float()  # 1 x 3 x H x W
        image = torch.nn.functional.interpolate(image, size=(size, size), mode="bilinear")
        sx, sy = size / info["width"], size / info["height"]
        boxes = [
            [x * sx, y * sy, (x + w) * sx, (y + h) * sy]
            for x, y, w, h in (a["bbox"] for a in by_image[info["id"]])
        ]
        samples.append(
            {
                "image": image[0].round().clamp(0, 255).to(torch.uint8),
                "height": size,
                "width": size,
                "instances": {
                    "boxes": torch.tensor(boxes, dtype=torch.float32),
                    "classes": torch.tensor(
                        [contiguous[a["category_id"]] for a in by_image[info["id"]]]
                    ),
                },
            }
        )
        if len(samples) == count:
            break
    return samples


def ours(arch: str):
    """Our detector with the protocol values, BN in one process (no SyncBN to synchronise)."""
    from insloc.config import get_cfg
    from insloc.config.config import validate_config
    from insloc.modeling import build_model

    cfg = get_cfg()
    cfg.MODEL.META_ARCHITECTURE = "GeneralizedRCNN"
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 80
    cfg.MODEL.CHANNELS_LAST = False  # torchvision's detector runs contiguous
    if arch == "fpn":
        cfg.MODEL.BACKBONE.NAME = "resnet_fpn"
        cfg.MODEL.ANCHOR_GENERATOR.SIZES = [[32], [64], [128], [256], [512]]
        cfg.MODEL.RPN.IN_FEATURES = ["p2", "p3", "p4", "p5", "p6"]
        cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN, cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = 2000, 1000
        cfg.MODEL.ROI_HEADS.NAME = "StandardROIHeads"
        cfg.MODEL.ROI_HEADS.IN_FEATURES = ["p2", "p3", "p4", "p5"]
        cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 1
    else:
        cfg.MODEL.BACKBONE.NAME = "resnet_c4"
        cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
        cfg.MODEL.ROI_HEADS.RES5_EXTRA_NORM = True
    validate_config(cfg)
    return build_model(cfg), lambda samples: samples


def torchvision_v2(size: int):
    from torchvision.models.detection import fasterrcnn_resnet50_fpn_v2

    model = fasterrcnn_resnet50_fpn_v2(
        weights=None,
        weights_backbone=None,
        num_classes=81,
        min_size=size,
        max_size=size,
        box_batch_size_per_image=512,
    )

    def inputs(samples):  # 0-1 float images, torchvision's targets (background is label 0)
        images = [s["image"].float() / 255 for s in samples]
        targets = [
            {"boxes": s["instances"]["boxes"], "labels": s["instances"]["classes"] + 1}
            for s in samples
        ]
        return images, targets

    return model, inputs


def detectron2_model(arch: str, device: str):
    """detectron2's R50-FPN or R50-C4 Faster R-CNN with the settings of ``ours(arch)``: the
    protocol config (``configs/detectron2/Base-RCNN-{FPN,C4}-BN.yaml``: BN in one process,
    freeze-at 0, 512 RoIs per image; FPN: 2000/1000 RPN train top-k and a plain 4conv1fc head (no
    extra norm); C4: res5 head with its extra norm), no masks."""
    from detectron2.modeling import build_model
    from detectron2.structures import Boxes, Instances
    from detectron2.utils.events import EventStorage

    from insloc.transfer.detectron2 import setup_cfg

    opts = ["MODEL.MASK_ON", False, "MODEL.ROI_HEADS.NUM_CLASSES", 80, "MODEL.DEVICE", device]
    if arch == "fpn":
        opts += ["MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead"]
    config = {"fpn": "Base-RCNN-FPN-BN.yaml", "c4": "Base-RCNN-C4-BN.yaml"}[arch]
    cfg = setup_cfg(os.path.join(ROOT, "configs", "detectron2", config), opts)

    class InStorage(torch.nn.Module):
        """detectron2's losses log statistics to the event storage its trainer opens."""

        def __init__(self):
            super().__init__()
            self.model = build_model(cfg)

        def forward(self, batch):
            with EventStorage():
                return self.model(batch)

    model = InStorage()

    def inputs(samples):  # detectron2's dicts: the same uint8 images, Instances targets
        batch = []
        for s in samples:
            targets = Instances(tuple(s["image"].shape[-2:]))
            targets.gt_boxes = Boxes(s["instances"]["boxes"])
            targets.gt_classes = s["instances"]["classes"]
            batch.append({"image": s["image"], "instances": targets})
        return (batch,)

    return model, inputs


def detectron2_available() -> bool:
    try:
        import detectron2  # noqa: F401
    except ImportError:
        return False
    return True


def _to(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: _to(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to(v, device) for v in obj)
    return obj


def build(name, samples, size, device):
    """(train step function, model) of one benchmarked detector on ``device``."""
    torch.manual_seed(0)
    dev = torch.device(device)
    if name == "torchvision R50-FPN v2":
        model, inputs = torchvision_v2(size)
    elif name.startswith("detectron2"):
        model, inputs = detectron2_model("fpn" if "FPN" in name else "c4", device)
    else:
        model, inputs = ours("fpn" if "FPN" in name else "c4")
    model = model.to(dev).train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.02, momentum=0.9, weight_decay=1e-4)
    args = _to(inputs(samples), dev)
    args = args if isinstance(args, tuple) else (args,)

    def step():
        """Returns (wall seconds, CPU seconds of this process)."""
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t, cpu = time.perf_counter(), time.process_time()
        loss = sum(model(*args).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t, time.process_time() - cpu

    return step, model


def peak_memory(name, samples, size, device, result_queue) -> None:
    """Peak memory (MB) of one train step, in a fresh process: CUDA max allocated, CPU peak RSS."""
    step, _ = build(name, samples, size, device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    step()
    if device.startswith("cuda"):
        result_queue.put(torch.cuda.max_memory_allocated() / 2**20)
    else:
        result_queue.put(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def step_times(names, samples, size, steps, device, rounds=3):
    """(wall, CPU) seconds of every measured train step, per model and round: ``rounds`` rounds of
    one unmeasured step per model then ``steps`` measured ones. The models take turns step by
    step, so a machine whose load changes during the run (shared CPUs) slows them alike; the CPU
    time of the process is less sensitive to other processes than the wall time."""
    runs = {name: build(name, samples, size, device)[0] for name in names}
    times = {name: [] for name in names}
    for _ in range(rounds):
        for step in runs.values():  # warm-up (allocator, first-call dispatch)
            step()
        measured = {name: [] for name in names}
        for _ in range(steps):
            for name, step in runs.items():
                measured[name].append(step())
        for name in names:
            times[name].append(measured[name])
    return times


def profile_steps(names, samples, size, device, top: int = 14) -> None:
    """torch.profiler over one train step of each model (after a warm-up step); prints the ops
    whose self CPU time differs most between ours and detectron2's model of the same kind."""
    from torch.profiler import ProfilerActivity, profile

    tables = {}
    for name in names:
        step, _ = build(name, samples, size, device)
        step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            step()
        tables[name] = {e.key: (e.self_cpu_time_total / 1000, e.count) for e in prof.key_averages()}
        total = sum(v[0] for v in tables[name].values())
        print(f"  {name}: {total:.0f} ms self CPU time in {len(tables[name])} ops")
    for arch in ("R50-FPN", "R50-C4"):
        a, b = f"ours {arch}", f"detectron2 {arch}"
        if a not in tables or b not in tables:
            continue
        ops = set(tables[a]) | set(tables[b])
        rows = sorted(
            ops, key=lambda o: -abs(tables[a].get(o, (0, 0))[0] - tables[b].get(o, (0, 0))[0])
        )
        total_a = sum(v[0] for v in tables[a].values())
        total_b = sum(v[0] for v in tables[b].values())
        print(f"\n| op ({arch}, self CPU ms, calls) | ours | detectron2 | ours - detectron2 |")
        print("|---|---|---|---|")
        for op in rows[:top]:
            (ta, na), (tb, nb) = tables[a].get(op, (0, 0)), tables[b].get(op, (0, 0))
            print(f"| `{op}` | {ta:.1f} ({na}) | {tb:.1f} ({nb}) | {ta - tb:+.1f} |")
        print(f"| total | {total_a:.0f} | {total_b:.0f} | {total_a - total_b:+.0f} |")


MODELS = (
    "ours R50-FPN",
    "torchvision R50-FPN v2",
    "ours R50-C4",
    "detectron2 R50-FPN",
    "detectron2 R50-C4",
)


def pipeline_rates(coco: str, workers: int, batches: int) -> dict:
    """images/s of the detection training loader (decode, resize, flip, polygons, batching) with
    the COCO recipe's sizes (short side 640-800), on coco128's JPEGs and on synthetic scenes."""
    from insloc.config import load_config
    from insloc.data.detection import build_detection_train_loader

    recipe = os.path.join(ROOT, "configs", "detection", "coco_mask_rcnn_R50_FPN_1x.yaml")
    json_spec = f"{coco}/annotations/instances_train2017.json:{coco}/train2017"
    sets = {
        "coco128 JPEGs": ["DATASETS.TRAIN", f"('{json_spec}',)"],
        "synthetic scenes (512 px)": [
            "DATASETS.TRAIN", "('synthetic_train',)", "DATASETS.SYNTHETIC.IMAGE_SIZE", "512",
            "DATASETS.SYNTHETIC.NUM_IMAGES", "256", "MODEL.ROI_HEADS.NUM_CLASSES", "5",
        ],
    }  # fmt: skip
    rates = {}
    for name, opts in sets.items():
        if name.startswith("coco128") and not os.path.isdir(coco):
            continue
        cfg = load_config(
            recipe,
            [*opts, "SOLVER.IMS_PER_BATCH", "8", "DATALOADER.NUM_WORKERS", str(workers),
             "DATASETS.TEST", "()", "MODEL.DEVICE", "cpu"],
        )  # fmt: skip
        stream = iter(build_detection_train_loader(cfg))
        next(stream)  # workers started, first batches in flight
        start, images = time.perf_counter(), 0
        for _ in range(batches):
            images += len(next(stream))
        rates[name] = images / (time.perf_counter() - start)
        del stream
    return rates


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coco", default=os.path.join(ROOT, "..", "shared", "data", "coco128"))
    parser.add_argument("--images", type=int, default=2, help="images per step")
    parser.add_argument("--size", type=int, default=512, help="square image side")
    parser.add_argument("--steps", type=int, default=5, help="train steps measured per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (warm-up step + steps)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--workers", type=int, default=2, help="data workers (pipeline part)")
    parser.add_argument("--batches", type=int, default=40, help="batches of 8 timed (pipeline)")
    parser.add_argument("--skip-pipeline", action="store_true", help="train steps only")
    parser.add_argument("--profile", action="store_true", help="op-level table (torch.profiler)")
    args = parser.parse_args()
    if not args.skip_pipeline:
        print(f"detection data pipeline, {args.workers} workers, batches of 8, COCO recipe sizes:")
        for name, rate in pipeline_rates(
            os.path.abspath(args.coco), args.workers, args.batches
        ).items():
            print(f"  {name:<26} {rate:7.1f} images/s")
    if not detectron2_available():
        missing = [m for m in args.models if m.startswith("detectron2")]
        for name in missing:
            print(f"{name}: n/a (detectron2 is not importable; it is not on PyPI)")
            args.models.remove(name)
    samples = load_images(os.path.abspath(args.coco), args.images, args.size)
    print(
        f"{len(samples)} COCO images {args.size}x{args.size} ({args.coco}), device {args.device}, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, 512 RoIs per image, "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    if args.profile:
        profile_steps(args.models, samples, args.size, args.device)
        return
    ctx = mp.get_context("spawn")
    memory = {}
    for name in args.models:  # a fresh process per model, so each peak is its own
        q = ctx.Queue()
        p = ctx.Process(target=peak_memory, args=(name, samples, args.size, args.device, q))
        p.start()
        memory[name] = q.get()
        p.join()
    times = step_times(args.models, samples, args.size, args.steps, args.device, args.rounds)
    print(
        f"{args.rounds} rounds of 1 warm-up + {args.steps} measured steps per model, interleaved:"
    )
    medians = {}  # name -> per-round (wall, CPU) medians
    for name in args.models:
        medians[name] = np.array([np.median(np.array(r), axis=0) for r in times[name]])
        (sec, cpu), (lo, hi) = np.median(medians[name], axis=0), _spread(medians[name][:, 1])
        print(
            f"  {name:<24} {sec * 1000:9.1f} ms/step ({cpu * 1000:9.1f} ms CPU, rounds "
            f"{lo * 1000:.0f}-{hi * 1000:.0f})   peak memory {memory[name]:8.0f} MB"
        )
    for ours_name, other in (
        ("ours R50-FPN", "torchvision R50-FPN v2"),
        ("ours R50-FPN", "detectron2 R50-FPN"),
        ("ours R50-C4", "detectron2 R50-C4"),
    ):
        if ours_name in medians and other in medians:
            ratio = medians[ours_name] / medians[other]  # rounds x (wall, CPU)
            (wall, cpu), (lo, hi) = np.median(ratio, axis=0), _spread(ratio[:, 1])
            print(
                f"  {ours_name} / {other}: time {wall:.2f}x, CPU time {cpu:.2f}x (rounds "
                f"{lo:.2f}-{hi:.2f}), memory {memory[ours_name] / memory[other]:.2f}x  "
                f"(goal CPU <= 1.0x, memory <= 1.05x)"
            )
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


def _spread(values) -> tuple:
    return float(np.min(values)), float(np.max(values))


if __name__ == "__main__":
    sys.exit(main())
