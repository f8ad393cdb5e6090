#!/usr/bin/env python
"""Keypoint matching, side by side in one run: random features vs short dense trainings vs a given
insloc checkpoint, on PF-WILLOW and on synthetic warps of a real image folder.

    python benchmarks/bench_matching.py [--willow ../shared/data/PF-WILLOW] [--warp-folder DIR]
        [--train-images DIR] [--coco-json FILE] [--checkpoint insloc.pth] [--iters 1000]
        [--size 160]

Rows: the position prior (identity transfer: each keypoint to the same relative position, the
floor), the untrained introspection network (random features), a short introspection training
on warps of --train-images, a short AnchorNet training on the image-level labels of --coco-json,
and, with --checkpoint (an insloc pretraining checkpoint), its res4 features next to the same
trunk at random init. Each row is matched with every --methods. Columns: PCK@0.05/0.1/0.15 under
each dataset's default protocol (named under the table), evaluation pairs/s, and the ROC AUC of
-sigma (the pair's) for correct@0.1 matches (introspection). Networks are ResNet-50 blocks at
--width channels so that the run fits 2 CPU cores in ~20 minutes; the figures show the direction
of the effects, not the papers' numbers.
"""

import argparse
import os
import sys
import tempfile
import time

import torch
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dense_match.datasets import build_matching_dataset  # noqa: E402
from dense_match.evaluate import evaluate_matching, resolve_protocol  # noqa: E402
from dense_match.model import build_dense_model  # noqa: E402
from dense_match.trainer import DenseTrainer  # noqa: E402
from insloc.config import load_config  # noqa: E402
from insloc.transfer.weight_file import read_weight_file  # noqa: E402


def _default_warp_folder() -> str:
    try:
        import skimage.data

        return skimage.data.data_dir
    except ImportError:
        return ""


def _checkpoint_trunk(path: str) -> tuple:
    """(depth, width) of the ResNet trunk of an insloc pretraining checkpoint (its config)."""
    weights = read_weight_file(path)
    if not weights.config:
        raise SystemExit(f"error: --checkpoint {path} is {weights.description}, not an insloc one")
    resnets = yaml.safe_load(weights.config)["MODEL"]["RESNETS"]
    return resnets["DEPTH"], resnets["WIDTH"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # ../shared/data next to the checkout (one level further up from a worktree in wt/<branch>)
    candidates = [os.path.join(ROOT, *[".."] * k, "shared", "data") for k in (1, 2)]
    data = next((c for c in candidates if os.path.isdir(c)), candidates[0])
    p.add_argument("--willow", default=os.path.join(data, "PF-WILLOW"))
    p.add_argument("--warp-folder", default=_default_warp_folder())
    p.add_argument("--train-images", default=os.path.join(data, "coco128", "train2017"))
    p.add_argument(
        "--coco-json",
        default=os.path.join(data, "coco128", "annotations", "instances_train2017.json"),
    )
    p.add_argument("--checkpoint", default="", help="insloc pretraining checkpoint (ResNet trunk)")
    p.add_argument("--iters", type=int, default=1000, help="training iterations of each head")
    p.add_argument("--intro-lr", type=float, default=0.2, help="introspection SOLVER.BASE_LR")
    p.add_argument("--methods", nargs="+", default=["nn", "soft_argmax"], help="MATCHING.METHOD")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=160, help="DENSE.INPUT_SIZE")
    p.add_argument("--width", type=int, default=16, help="ResNet-50 width (64: the real one)")
    p.add_argument("--willow-pairs", type=int, default=70, help="every k-th of the 630 pairs")
    p.add_argument("--warp-pairs", type=int, default=30)
    p.add_argument("--threads", type=int, default=1, help="torch threads (cores are shared)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    common = [
        "MODEL.DEVICE", "cpu", "MODEL.RESNETS.WIDTH", str(args.width),
        "DENSE.INPUT_SIZE", str(args.size), "SOLVER.IMS_PER_BATCH", str(args.batch),
        "SOLVER.REFERENCE_BATCH_SIZE", str(args.batch), "SOLVER.MAX_ITER", str(args.iters),
        "SOLVER.WARMUP_ITERS", "0", "SOLVER.CHECKPOINT_PERIOD", str(10 * args.iters),
        "TEST.MATCHING_PAIRS", "0", "DATALOADER.NUM_WORKERS", "0", "LOG_PERIOD", "10",
        "MATCHING.WARP_PAIRS", str(args.warp_pairs),
    ]  # fmt: skip
    # NEG_DIST is the papers' 30 px at 224 scaled to the input: the same fraction of the image,
    # so that sigma learns about confusions at the scale PCK@0.1 counts as wrong.
    neg_dist = 30.0 * args.size / 224
    intro = ["DENSE.INTROSPECTION.NUM_POINTS", "300", "DATASETS.DENSE_TRAIN", args.train_images]
    intro += ["SOLVER.BASE_LR", str(args.intro_lr), "DENSE.INTROSPECTION.NEG_DIST", str(neg_dist)]
    anchor = ["DENSE.ANCHORNET.NUM_CLASSES", "80", "DENSE.ANCHORNET.NUM_FILTERS", "4"]
    anchor += ["DATASETS.DENSE_TRAIN", args.coco_json, "DENSE.FEATURES.REDUCE_DIM", "64"]
    anchor += ["DATASETS.IMAGE_ROOT", args.train_images]
    intro_recipe, anchor_recipe = "introspection_R50_dilated.yaml", "anchornet_R50_hypercolumn.yaml"
    # (name, recipe, overrides, how: None = as built, "train", or a weights file, methods)
    rows = [
        ("position prior (identity transfer)", "eval_R50_res4.yaml", [], None, ["identity"]),
        ("random (untrained introspection net)", intro_recipe, intro, None, args.methods),
        (f"introspection, {args.iters} iterations", intro_recipe, intro, "train", args.methods),
        (f"AnchorNet, {args.iters} iterations", anchor_recipe, anchor, "train", args.methods),
    ]
    if args.checkpoint:
        depth, width = _checkpoint_trunk(args.checkpoint)
        trunk = ["MODEL.RESNETS.DEPTH", str(depth), "MODEL.RESNETS.WIDTH", str(width)]
        name = f"R{depth} width {width}, res4"
        rows.append((f"random {name}", "eval_R50_res4.yaml", trunk, None, args.methods))
        rows.append(
            (
                f"insloc checkpoint {name}",
                "eval_R50_res4.yaml",
                trunk,
                args.checkpoint,
                args.methods,
            )
        )
    datasets = [("PF-WILLOW", args.willow)]
    if args.warp_folder:
        datasets.append(
            (
                f"warps of {os.path.basename(args.warp_folder.rstrip('/'))}",
                f"warp:{args.warp_folder}",
            )
        )
    print(f"input {args.size}x{args.size}, ResNet-50 width {args.width}, batch {args.batch}, "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    results = []
    for name, recipe, extra, how, methods in rows:
        torch.manual_seed(0)  # every row's random init is the same draw, whatever rows precede it
        cfg = load_config(os.path.join(ROOT, "configs", "matching", recipe), common + extra)
        if how == "train":
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as out:
                cfg.defrost()
                cfg.OUTPUT_DIR = out
                cfg.freeze()
                trainer = DenseTrainer(cfg)
                trainer.train()
                model = trainer.model
            print(f"trained {name} in {time.perf_counter() - t0:.0f} s", flush=True)
        else:
            if how:
                cfg.defrost()
                cfg.MODEL.WEIGHTS = how
                cfg.freeze()
            model = build_dense_model(cfg)
        model.eval()
        for dname, spec in datasets:
            cfg.defrost()
            cfg.DATASETS.TEST = (spec,)
            cfg.freeze()
            ds = build_matching_dataset(cfg)
            if dname == "PF-WILLOW":
                ds.records = ds.records[:: max(1, len(ds) // args.willow_pairs)][
                    : args.willow_pairs
                ]
            protocol = resolve_protocol(cfg, ds.name)
            for method in methods:
                r = evaluate_matching(model, ds, protocol, side=args.size, method=method)
                results.append((name, dname, r))
                print(f"  {name} on {dname}, {method}: PCK@0.1 {r['pck@0.1']:.1f}", flush=True)

    print()
    header = f"{'features':<38}{'dataset':<26}{'match':<12}" + "".join(
        f"{c:>8}" for c in ("PCK@.05", "PCK@.1", "PCK@.15", "pairs/s", "AUC")
    )
    print(header)
    print("-" * len(header))
    for name, dname, r in results:
        auc = f"{r['sigma_auc']:.3f}" if r["sigma_auc"] is not None else "-"
        print(
            f"{name:<38}{dname:<26}{r['method']:<12}"
            f"{r['pck@0.05']:>8.1f}{r['pck@0.1']:>8.1f}{r['pck@0.15']:>8.1f}"
            f"{r['pairs_per_sec']:>8.2f}{auc:>8}"
        )
    seen = {}
    for _, dname, r in results:
        seen[dname] = (r["norm"], r["resize"], r["average"], r["pairs"], r["keypoints"])
    for dname, (norm, resize, average, pairs, kps) in seen.items():
        print(
            f"{dname}: PCK normalised by {norm}, {resize} pixels, {average}; "
            f"{pairs} pairs, {kps} keypoints"
        )
    if not args.checkpoint:
        print("insloc checkpoint: not measured (pass --checkpoint)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
