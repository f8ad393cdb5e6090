#!/usr/bin/env python
"""The classic pretext tasks in miniature: linear probes per layer after a fixed short budget, side
by side with random init, and the orderings the papers report, with the spread over seeds.

    python benchmarks/bench_pretexts.py [--coco ../shared/data/coco128] \
        [--willow ../shared/data/PF-WILLOW] [--iters 150] [--seeds 0 1 2] [--threads 1]

Every run pretrains a tiny trunk (ResNet-18 of width 8, or VGG-19-BN of width 8) on the 128 real
coco128 photos for ``--iters`` iterations of ``--batch`` images with the real engine
(``PretrainTrainer``), then fits the class-balanced logistic-regression probe (L-BFGS, C swept on
a held-out part of the training set; ``fit_probe(balanced=True)``) on frozen, globally pooled
features of each block, on two real classification sets: coco128 object crops (``make_crops``:
images split between train and val; 20 classes, 37% of the test crops are people) and PF-WILLOW
(7 sub-classes x 10 images, 6 train / 4 test per class). It reports mean per-class test accuracy
(chance 1 / K whatever the imbalance; on PF-WILLOW it equals top-1). Checked in miniature:

1. RotNet: 4 rotations beat 2 (0/180) and 8 (multiples of 45) (Gidaris et al., Table 2).
2. Revisiting SSL: on ResNet the probe does not degrade towards the last block; on VGG it does.

Nothing is asserted; a miniature that does not reproduce is a finding. One torch/BLAS thread by
default: one seed of the default run took 199 s on the 2 shared cores at load 5-6, so the default
3 seeds take about 10 minutes.
"""

import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
RESNET_LAYERS = ["stem", "block1", "block2", "block3", "block4"]
VGG_LAYERS = ["block1", "block2", "block3", "block4", "block5", "fc6", "pre-logits"]

RESNET = ["MODEL.BACKBONE.NAME", "resnet", "MODEL.RESNETS.DEPTH", 18, "MODEL.RESNETS.WIDTH", 8]
VGG = ["MODEL.BACKBONE.NAME", "vgg19_bn", "MODEL.VGG.WIDTH", 8, "MODEL.VGG.FC_DIM", 128]
TILES = ["INPUT.PRETEXT.RESIZE", 108, "INPUT.PRETEXT.CROP_SIZE", 96]
# name: (method, trunk, method-specific overrides)
RUNS = {
    "rotnet4": ("RotNet", RESNET, []),
    "rotnet2": ("RotNet", RESNET, ["MODEL.ROTATION.ANGLES", "(0, 180)"]),
    "rotnet8": (
        "RotNet",
        RESNET,
        ["MODEL.ROTATION.ANGLES", "(0, 45, 90, 135, 180, 225, 270, 315)"],
    ),
    "jigsaw": (
        "Jigsaw",
        RESNET,
        TILES
        + [
            "INPUT.JIGSAW.TILE_SIZE",
            28,
            "INPUT.JIGSAW.JITTER",
            2,
            "MODEL.JIGSAW.NUM_PERMUTATIONS",
            30,
            "MODEL.JIGSAW.TILE_DIM",
            64,
            "MODEL.JIGSAW.HIDDEN_DIM",
            256,
        ],
    ),
    "relative_loc": (
        "RelativeLoc",
        RESNET,
        TILES
        + [
            "INPUT.RELATIVE_LOC.TILE_SIZE",
            28,
            "INPUT.RELATIVE_LOC.JITTER",
            2,
            "INPUT.RELATIVE_LOC.CHROMATIC",
            "drop",
            "MODEL.RELATIVE_LOC.TILE_DIM",
            64,
            "MODEL.RELATIVE_LOC.HIDDEN_DIM",
            256,
        ],
    ),
    "exemplar": (
        "Exemplar",
        RESNET,
        [
            "INPUT.PRETEXT.RESIZE",
            144,
            "INPUT.PRETEXT.CROP_SIZE",
            128,
            "INPUT.EXEMPLAR.SEED_SIZE",
            48,
            "INPUT.EXEMPLAR.PATCH_SIZE",
            32,
            "INPUT.EXEMPLAR.COPIES",
            4,
            "MODEL.EXEMPLAR.NUM_CLASSES",
            128,
        ],
    ),
    "rotnet4_vgg": ("RotNet", VGG, []),
}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--coco", default=os.path.join(SHARED, "coco128"))
    p.add_argument("--willow", default=os.path.join(SHARED, "PF-WILLOW"))
    p.add_argument("--iters", type=int, default=150, help="pretraining iterations per run")
    p.add_argument("--batch", type=int, default=16, help="images per iteration")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads")
    p.add_argument("--work-dir", default="", help="where runs and crops go (default: a temp dir)")
    return p.parse_args()


def pretrain(name, seed, args, work):
    from insloc.config import load_config
    from insloc.engine.pretrain import PretrainTrainer

    method, trunk, extra = RUNS[name]
    opts = [
        "MODEL.META_ARCHITECTURE",
        method,
        "MODEL.DEVICE",
        "cpu",
        *trunk,
        "DATASETS.PRETRAIN",
        os.path.join(args.coco, "train2017"),
        "INPUT.PRETEXT.RESIZE",
        72,
        "INPUT.PRETEXT.CROP_SIZE",
        64,
        "SOLVER.MAX_ITER",
        args.iters,
        "SOLVER.IMS_PER_BATCH",
        args.batch,
        "SOLVER.BASE_LR",
        0.05,
        "SOLVER.REFERENCE_BATCH_SIZE",
        0,
        "SOLVER.LR_SCHEDULER_NAME",
        "WarmupCosineLR",
        "SOLVER.WARMUP_ITERS",
        max(1, args.iters // 10),
        "SOLVER.CHECKPOINT_PERIOD",
        10**6,
        "LOG_PERIOD",
        max(1, args.iters // 5),
        "SEED",
        seed,
        "OUTPUT_DIR",
        os.path.join(work, f"{name}_seed{seed}"),
        *extra,
    ]
    cfg = load_config(
        os.path.join(ROOT, "configs/quick/Base-Pretext-Tiny.yaml"), [str(o) for o in opts]
    )
    os.makedirs(cfg.OUTPUT_DIR)
    start, cpu = time.perf_counter(), time.process_time()
    PretrainTrainer(cfg).train()
    seconds = (time.perf_counter() - start, time.process_time() - cpu)
    return cfg, os.path.join(cfg.OUTPUT_DIR, "model_final.pth"), seconds


def probe_sets(args, work):
    from insloc.data.classification import FolderClassification, load_classification_split
    from insloc.data.coco_crops import make_crops
    from insloc.evaluation.probes.linear_probe import held_out_split

    crops = os.path.join(work, "coco128_crops")
    make_crops(
        os.path.join(args.coco, "annotations", "instances_train2017.json"),
        crops,
        os.path.join(args.coco, "train2017"),
        min_size=24,
        min_per_class=2,
    )
    sets = {
        "coco128 crops": (
            load_classification_split(crops, "train"),
            load_classification_split(crops, "test"),
        )
    }
    willow = FolderClassification(args.willow)
    test_share = 0.4
    train_idx, test_idx = held_out_split(willow.labels, test_share, seed=0)
    sets["PF-WILLOW"] = (willow.subset(train_idx), willow.subset(test_idx))
    # decode and resize once: every trunk reads the same 64 x 64 centre crops
    return {name: tuple(_in_memory(s) for s in pair) for name, pair in sets.items()}


def _in_memory(dataset):
    from insloc.data.classification import ArrayClassification
    from insloc.evaluation.probes.features import preprocess_image

    images = np.stack([preprocess_image(dataset.load(i), 72, 64) for i in range(len(dataset))])
    return ArrayClassification(images, dataset.labels, dataset.class_names, dataset.description)


def evaluate(trunk, sets, layers, seed):
    """{set: {layer: mean per-class test accuracy in %}} of the class-balanced probe."""
    from insloc.evaluation import evaluate_layers

    out = {}
    for set_name, (train, test) in sets.items():
        res = evaluate_layers(trunk, train, test, layers, seed=seed, balanced=True)
        out[set_name] = {layer: 100 * r["mean_class_accuracy"] for layer, r in res.items()}
    return out


def mean_std(values):
    return f"{np.mean(values):5.1f} ±{np.std(values):4.1f}"


def main():
    args = parse_args()
    sys.path.insert(0, ROOT)
    import torch
    from threadpoolctl import threadpool_limits

    from insloc.config import load_config
    from insloc.evaluation import load_trunk, random_trunk
    from insloc.utils.logger import setup_logger

    started = time.perf_counter()
    setup_logger("", 0)
    # one thread by default: on 2 cores shared with other jobs, 2 OpenMP/BLAS threads spin at
    # their barriers and ran 10x slower (30 RotNet iterations: 32 s against 3 s at load 5)
    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # numpy / scipy BLAS of the probes (a scikit-learn dependency)
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_pretexts_")
    print(
        f"work dir {work}; {args.iters} iterations x {args.batch} images per run, "
        f"seeds {args.seeds}"
    )
    sets = probe_sets(args, work)
    for name, (train, test) in sets.items():
        majority = 100 * np.mean(test.labels == np.bincount(train.labels).argmax())
        print(
            f"{name}: {len(train)} train / {len(test)} test images, {len(train.class_names)} "
            f"classes; chance (mean per-class accuracy of any one-class answer) "
            f"{100 / len(np.unique(test.labels)):.1f}%, top-1 of the majority class {majority:.1f}%"
        )

    results = {}  # run -> seed -> set -> layer -> accuracy
    timings = {}
    for seed in args.seeds:
        for baseline, trunk_opts, layers in (
            ("random ResNet", RESNET, RESNET_LAYERS),
            ("random VGG", VGG, VGG_LAYERS),
        ):
            if baseline == "random VGG" and "rotnet4_vgg" not in args.runs:
                continue
            cfg = load_config(
                os.path.join(ROOT, "configs/quick/rotnet_NIN4_tiny.yaml"),
                [str(o) for o in trunk_opts],
            )
            results.setdefault(baseline, {})[seed] = evaluate(
                random_trunk(cfg, seed), sets, layers, seed
            )
        for name in args.runs:
            cfg, path, seconds = pretrain(name, seed, args, work)
            layers = VGG_LAYERS if cfg.MODEL.BACKBONE.NAME == "vgg19_bn" else RESNET_LAYERS
            start, cpu = time.perf_counter(), time.process_time()
            results.setdefault(name, {})[seed] = evaluate(load_trunk(path), sets, layers, seed)
            probed = (time.perf_counter() - start, time.process_time() - cpu)
            timings.setdefault(name, []).append((seconds[0], probed[0]))
            print(
                f"{name} seed {seed}: pretrained in {seconds[0]:.0f} s ({seconds[1]:.0f} s CPU), "
                f"probed in {probed[0]:.0f} s ({probed[1]:.0f} s CPU)"
            )

    for set_name in sets:
        print(
            f"\n== {set_name}: class-balanced logistic-regression probe, mean per-class test "
            f"accuracy (%), mean ± std over seeds {args.seeds}"
        )
        for family, layers in (("ResNet-18/8", RESNET_LAYERS), ("VGG-19-BN/8", VGG_LAYERS)):
            names = [
                n
                for n in results
                if (n.endswith("vgg") or n == "random VGG") == (family.startswith("VGG"))
            ]
            if not names:
                continue
            print(f"-- {family}")
            print("layer     " + "".join(f"{n:>15}" for n in names))
            for layer in layers:
                cells = [
                    mean_std([results[n][s][set_name][layer] for s in results[n]]) for n in names
                ]
                print(f"{layer:<10}" + "".join(f"{c:>15}" for c in cells))

    print("\n== orderings (per seed; 'best' = best layer)")
    for set_name in sets:
        best = {n: [max(results[n][s][set_name].values()) for s in results[n]] for n in results}
        if {"rotnet2", "rotnet4", "rotnet8"} <= set(results):
            wins = [
                b4 > b2 and b4 > b8
                for b2, b4, b8 in zip(best["rotnet2"], best["rotnet4"], best["rotnet8"])
            ]
            print(
                f"{set_name}: rotations best-layer 2: {mean_std(best['rotnet2'])}  4: "
                f"{mean_std(best['rotnet4'])}  8: {mean_std(best['rotnet8'])}  -> 4 beats 2 and 8 "
                f"in {sum(wins)}/{len(wins)} seeds"
            )
        for name, last in (("rotnet4", "block4"), ("rotnet4_vgg", "pre-logits")):
            if name in results:
                drops = [
                    max(results[name][s][set_name].values()) - results[name][s][set_name][last]
                    for s in results[name]
                ]
                print(
                    f"{set_name}: {name} drop from best layer to {last}: {mean_std(drops)} points"
                )
    print(
        "\nseconds per run (pretraining + probes): "
        + ", ".join(
            f"{n} {np.mean([p for p, _ in t]):.0f} + {np.mean([q for _, q in t]):.0f}"
            for n, t in timings.items()
        )
        + f"; whole benchmark {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
