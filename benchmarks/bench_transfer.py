#!/usr/bin/env python
"""Does pretraining pay? One fine-tuning recipe from four initialisations, over seeds.

    python benchmarks/bench_transfer.py --output-dir DIR [--seeds 0 1 2] \
        [--inits random supervised moco_v2 insloc] [--jobs 2]

Every initialisation is fine-tuned with the same recipe, ``make demo``'s
(configs/quick/det_demo_FPN.yaml: a tiny Mask R-CNN R-FPN trained on 64 labelled synthetic scenes,
evaluated on 128 held-out ones), once per seed, through ``tools/train_net.py`` and
``MODEL.WEIGHTS`` as a user runs it (``insloc.transfer.study``):

- ``random``: no weights (MODEL.WEIGHTS "").
- ``supervised``: the positive control, a trunk trained with labels: the same detector trained on
  2048 other labelled scenes (configs/quick/det_control_FPN.yaml), its trunk exported with
  ``tools/convert_checkpoint.py --to torchvision``. It must beat random init by a wide margin, or
  the path from a checkpoint to a fine-tuned network is losing what the weights carry.
- ``moco_v2`` and ``insloc``: self-supervised pretraining (``tools/pretrain_net.py``) on the 512
  unlabelled scenes that the 64 labelled ones are drawn from, at the demo's budget.

The weights are kept in DIR/pretrain/<init>, the fine-tuning runs in DIR/finetune/<init>/seed<s>:
a second run with the same DIR reuses every finished run and resumes killed ones. Every run
evaluates each --eval-period iterations, so the curves of held-out AP against iteration come from
the same runs as the table.

Writes DIR/results.json ({"seeds", "rows": {init: {"box_AP": [per seed], "mask_AP": [...]}},
"curves", the commands and times) and DIR/curves.png, and prints box and mask AP as mean +-
sample standard deviation over seeds, and each initialisation's gain over random init against
twice the larger seed spread. Nothing is asserted: a miniature that does not show a paper's
ordering is a finding.
"""

import argparse
import json
import os
import sys
import time

from insloc.config import load_config
from insloc.transfer.study import (
    ROOT,
    Init,
    gains_over_random,
    linear_probe,
    matching,
    mean_std,
    plot_curves,
    probe_crops,
    read_curve,
    read_results,
    run_all,
    threads_per_job,
    weights_and_finetunings,
)

FINETUNE = "configs/quick/det_demo_FPN.yaml"
TEST_SET = "synthetic_test"
# the random trunk of the linear probe: the fine-tuned detector's (ResNet-18 of width 16)
RANDOM_TRUNK = "configs/quick/insloc_tiny_FPN.yaml"
WILLOW = os.path.join(ROOT, "..", "shared", "data", "PF-WILLOW")
INITS = {
    i.name: i
    for i in (
        Init("random", "random init"),
        Init("supervised", "supervised (control)", "configs/quick/det_control_FPN.yaml", True),
        Init("moco_v2", "MoCo v2", "configs/quick/moco_v2_tiny_demo.yaml"),
        Init("insloc", "InsLoc", "configs/quick/insloc_tiny_FPN_demo.yaml"),
    )
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True, help="folder for every output (a cache)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--inits", nargs="+", default=list(INITS), choices=list(INITS))
    parser.add_argument("--jobs", type=int, default=2, help="runs at once (default 2)")
    parser.add_argument(
        "--eval-period", type=int, default=100, help="iterations between evaluations"
    )
    parser.add_argument(
        "--no-probes", action="store_true",
        help="skip the linear probe and keypoint matching of each initialisation's trunk",
    )  # fmt: skip
    parser.add_argument(
        "--willow", default=WILLOW,
        help="PF-WILLOW folder for the matching probe (synthetic warps when it is missing)",
    )  # fmt: skip
    parser.add_argument(
        "--finetune-opts", nargs="*", default=[], metavar="KEY VALUE",
        help="config overrides for every fine-tuning run (e.g. SOLVER.MAX_ITER 100)",
    )  # fmt: skip
    parser.add_argument(
        "--pretrain-opts", nargs="*", default=[], metavar="KEY VALUE",
        help="config overrides for every run that makes weights",
    )  # fmt: skip
    args = parser.parse_args(argv)
    out = os.path.abspath(args.output_dir)
    os.makedirs(out, exist_ok=True)
    threads = threads_per_job(args.jobs)
    inits = [INITS[name] for name in args.inits]
    start = time.time()

    print(f"{args.jobs} runs at once, {threads} math thread(s) each; a fine-tuning starts when its")
    print("weights exist (every command below, its log beside its folder):", flush=True)
    runs = {
        (i.name, seed): os.path.join(out, "finetune", i.name, f"seed{seed}")
        for i in inits
        for seed in args.seeds
    }
    opts = ["TEST.EVAL_PERIOD", str(args.eval_period), *args.finetune_opts]
    weights, finetuned = weights_and_finetunings(
        inits,
        os.path.join(out, "pretrain"),
        args.pretrain_opts,
        {(n, seed): (n, d, ["SEED", str(seed), *opts]) for (n, seed), d in runs.items()},
        FINETUNE,
        args.jobs,
    )
    for name, w in weights.items():
        state = "reused" if w["reused"] else f"{w['seconds']:.0f} s"
        print(f"  weights {name}: {w['path'] or '(none)'} ({state})", flush=True)

    rows = {i.name: {"box_AP": [], "mask_AP": []} for i in inits}
    curves = {i.name: {} for i in inits}
    for (name, seed), run_dir in runs.items():
        result = read_results(run_dir, TEST_SET)
        rows[name]["box_AP"].append(result["box"])
        rows[name]["mask_AP"].append(result["mask"])
        curves[name][seed] = read_curve(run_dir, TEST_SET)
    labels = {i.name: i.label for i in inits}
    print(f"\nheld-out {TEST_SET} ({FINETUNE}), seeds {args.seeds}: mean +- std over seeds")
    print(f"  {'initialisation':<22}{'box AP':>14}{'mask AP':>14}   box AP per seed")
    for name, row in rows.items():
        (box, box_std), (mask, mask_std) = mean_std(row["box_AP"]), mean_std(row["mask_AP"])
        per_seed = " ".join(f"{v:.1f}" for v in row["box_AP"])
        cells = f"{box:>7.1f} +- {box_std:<4.1f}{mask:>7.1f} +- {mask_std:<4.1f}"
        print(f"  {labels[name]:<22}{cells}   {per_seed}")
    gains = gains_over_random({n: r["box_AP"] for n, r in rows.items()}, labels)
    if gains:
        print("box AP gain over random init; is it more than twice the larger seed spread?")
        print("\n".join(gains))
    probes = {} if args.no_probes else run_probes(weights, args, out, threads)
    title = f"{FINETUNE} on {TEST_SET}\nmean over seeds {args.seeds}, band = min..max"
    plot_curves(curves, labels, title, os.path.join(out, "curves.png"))
    report = {
        "seeds": args.seeds,
        "rows": rows,
        "curves": {
            n: {str(s): {str(i): list(v) for i, v in c.items()} for s, c in per_seed.items()}
            for n, per_seed in curves.items()
        },
        "finetune_config": FINETUNE,
        "finetune_opts": opts,
        "pretrain_opts": args.pretrain_opts,
        "weights": weights,
        "finetune": {f"{n}/seed{s}": r for (n, s), r in finetuned.items()},
        "probes": probes,
        "jobs": args.jobs,
        "wall_seconds": time.time() - start,
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(f"\n{(time.time() - start) / 60:.1f} min; {out}/results.json, {out}/curves.png")
    return 0


def run_probes(weights: dict, args, out: str, threads: int) -> dict:
    """The same trunks through tools/linear_eval.py (synthetic object crops of other scenes) and
    tools/eval_matching.py (PF-WILLOW, res4 nearest neighbours): the control must beat random
    init there too. Returns {init: {"linear_layer", "linear_acc", "pck@0.1"}} and prints them."""
    trunks = {name: w["path"] for name, w in weights.items()}
    probes = os.path.join(out, "probes")
    crops = probe_crops(os.path.join(probes, "data"), threads)
    linear = linear_probe(trunks, RANDOM_TRUNK, crops, os.path.join(probes, "linear_eval"), threads)
    r = load_config(FINETUNE).MODEL.RESNETS
    opts = ["MODEL.RESNETS.DEPTH", str(r.DEPTH), "MODEL.RESNETS.WIDTH", str(r.WIDTH), "SEED", "0"]
    if os.path.isdir(args.willow):
        opts += ["DENSE.INPUT_SIZE", "160", "DATASETS.TEST", f"('{args.willow}',)"]
    else:  # synthetic warps of synthetic scenes of the fine-tuning's size
        opts += ["DENSE.INPUT_SIZE", "128", "DATASETS.SYNTHETIC.IMAGE_SIZE", "128"]
    pcks = run_all(
        {
            n: (matching, p, opts, os.path.join(probes, "matching", n), threads)
            for n, p in trunks.items()
        },
        args.jobs,
    )
    dataset = next(iter(pcks.values()))["dataset"]
    print("\nthe same trunks, frozen: linear probe on synthetic object crops (best layer, mean")
    print(f"per-class accuracy, chance 20%) and keypoint matching on {dataset} (res4, PCK@0.1)")
    report = {}
    for name in trunks:
        layer, acc = linear[name]
        report[name] = {"linear_layer": layer, "linear_acc": acc, "pck@0.1": pcks[name]["pck@0.1"]}
        print(f"  {name:<22}{acc:>6.1f} ({layer}){pcks[name]['pck@0.1']:>10.1f}")
    return report


if __name__ == "__main__":
    sys.exit(main())
