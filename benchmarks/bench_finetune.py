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
  - detectron2's R50-FPN with the same settings, where detectron2 is importable
    (``detectron2_r50_fpn``; it is not on PyPI).
Also images/s of the detection training loader (decode, resize to the COCO recipe's 640-800 short
side, flip, polygons) on coco128's JPEGs and on synthetic scenes, with ``--workers`` workers.
Step times are medians of steps the models take in turns after one warm-up step each; peak memory
is measured in a fresh process per model (CUDA: max allocated; CPU: peak resident set). Nothing
here is asserted; the figures and ratios are for docs/benchmarks.md.
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


def detectron2_r50_fpn(device: str):
    """detectron2's R50-FPN Faster R-CNN with the settings of ``ours("fpn")``: the protocol config
    (``configs/detectron2/Base-RCNN-FPN-BN.yaml``: BN in one process, freeze-at 0, 2000/1000 RPN
    train top-k, 512 RoIs per image) with a plain 4conv1fc head (no extra norm) and no masks."""
    from detectron2.modeling import build_model
    from detectron2.structures import Boxes, Instances
    from detectron2.utils.events import EventStorage

    from insloc.transfer.detectron2 import setup_cfg

    opts = ["MODEL.MASK_ON", False, "MODEL.ROI_BOX_HEAD.NAME", "FastRCNNConvFCHead"]
    opts += ["MODEL.ROI_HEADS.NUM_CLASSES", 80, "MODEL.DEVICE", device]
    cfg = setup_cfg(os.path.join(ROOT, "configs", "detectron2", "Base-RCNN-FPN-BN.yaml"), opts)

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
    elif name == "detectron2 R50-FPN":
        model, inputs = detectron2_r50_fpn(device)
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


def step_times(names, samples, size, steps, device):
    """Median (wall, CPU) seconds per train step of each model. The models take turns step by
    step, so a machine whose load changes during the run (shared CPUs) slows them alike; the CPU
    time of the process is less sensitive to other processes than the wall time."""
    runs = {name: build(name, samples, size, device)[0] for name in names}
    for step in runs.values():  # warm-up
        step()
    times = {name: [] for name in names}
    for _ in range(steps):
        for name, step in runs.items():
            times[name].append(step())
    return {name: tuple(np.median(np.array(t), axis=0).tolist()) for name, t in times.items()}


MODELS = ("ours R50-FPN", "torchvision R50-FPN v2", "ours R50-C4", "detectron2 R50-FPN")


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
    parser.add_argument("--steps", type=int, default=3, help="train steps measured (after 1)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--workers", type=int, default=2, help="data workers (pipeline part)")
    parser.add_argument("--batches", type=int, default=40, help="batches of 8 timed (pipeline)")
    parser.add_argument("--skip-pipeline", action="store_true", help="train steps only")
    args = parser.parse_args()
    if not args.skip_pipeline:
        print(f"detection data pipeline, {args.workers} workers, batches of 8, COCO recipe sizes:")
        for name, rate in pipeline_rates(
            os.path.abspath(args.coco), args.workers, args.batches
        ).items():
            print(f"  {name:<26} {rate:7.1f} images/s")
    if "detectron2 R50-FPN" in args.models and not detectron2_available():
        print("detectron2 R50-FPN: n/a (detectron2 is not importable; it is not on PyPI)")
        args.models.remove("detectron2 R50-FPN")
    samples = load_images(os.path.abspath(args.coco), args.images, args.size)
    print(
        f"{len(samples)} COCO images {args.size}x{args.size} ({args.coco}), device {args.device}, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, 512 RoIs per image"
    )
    ctx = mp.get_context("spawn")
    memory = {}
    for name in args.models:  # a fresh process per model, so each peak is its own
        q = ctx.Queue()
        p = ctx.Process(target=peak_memory, args=(name, samples, args.size, args.device, q))
        p.start()
        memory[name] = q.get()
        p.join()
    seconds = step_times(args.models, samples, args.size, args.steps, args.device)
    results = {name: (seconds[name], memory[name]) for name in args.models}
    for name, ((sec, cpu), peak) in results.items():
        print(
            f"  {name:<24} {sec * 1000:9.1f} ms/step ({cpu * 1000:9.1f} ms CPU)   "
            f"peak memory {peak:8.0f} MB"
        )
    if "ours R50-FPN" in results:
        for other in ("torchvision R50-FPN v2", "detectron2 R50-FPN"):
            if other in results:
                (t_ours, c_ours), m_ours = results["ours R50-FPN"]
                (t_other, c_other), m_other = results[other]
                print(
                    f"  ours R50-FPN / {other}: time {t_ours / t_other:.2f}x (CPU time "
                    f"{c_ours / c_other:.2f}x), memory {m_ours / m_other:.2f}x  (goal <= 1.05x)"
                )


if __name__ == "__main__":
    sys.exit(main())
