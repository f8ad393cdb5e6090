#!/usr/bin/env python
"""`make demo`: does pretraining pay? The whole loop on synthetic scenes, on CPU in minutes.

1. Weights, two runs at a time: an InsLoc pretraining of a tiny R-FPN on 512 unlabelled scenes
   (configs/quick/insloc_tiny_FPN_demo.yaml), and the positive control, the same detector trained
   with labels on 2048 other scenes (configs/quick/det_control_FPN.yaml), whose trunk is exported
   with tools/convert_checkpoint.py --to torchvision.
2. A tiny Mask R-CNN fine-tuned with few labels (64 scenes, configs/quick/det_demo_FPN.yaml) from
   random initialisation, from the control's trunk and from the InsLoc checkpoint, each evaluated
   on 128 held-out scenes.
3. The AP table, and a PNG of the InsLoc-initialised detector's predictions.

Every step is the user's own tool (insloc.transfer.study); benchmarks/bench_transfer.py runs the
same recipe over seeds, which says how large a gain must be to be one.

python tools/run_demo.py --output-dir output/demo
"""

import argparse
import os
import sys
import time

from insloc.transfer.study import (
    Init,
    make_weights,
    read_results,
    run_all,
    run_tool,
    threads_per_job,
    train_or_reuse,
)

FINETUNE = "configs/quick/det_demo_FPN.yaml"
TEST_SET = "synthetic_test"
INITS = (
    Init("random", "random init"),
    Init("supervised", "supervised (control)", "configs/quick/det_control_FPN.yaml", True),
    Init("insloc", "InsLoc (demo pretrain)", "configs/quick/insloc_tiny_FPN_demo.yaml"),
)
# Runs at once, one math thread each: the two weights, then the three fine-tunings together
# (three single-threaded runs on two cores end sooner than two, then one).
WEIGHT_JOBS, FINETUNE_JOBS = 2, 3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True, help="folder for every output (new)")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.output_dir)
    if os.path.exists(out):
        print(f"error: {out} exists; choose another --output-dir", file=sys.stderr)
        return 2
    threads = threads_per_job(WEIGHT_JOBS)
    start = time.time()
    try:
        print(f"\n=== weights ({WEIGHT_JOBS} runs at once; logs beside each folder)", flush=True)
        weights = run_all(
            {i.name: (make_weights, i, os.path.join(out, i.name), [], threads) for i in INITS},
            WEIGHT_JOBS,
        )
        made = time.time()
        print("\n=== fine-tuning with 64 labelled scenes from each initialisation", flush=True)
        runs = {i.name: os.path.join(out, f"finetune_{i.name}") for i in INITS}
        run_all(
            {
                i.name: (
                    train_or_reuse, "train_net.py", FINETUNE, runs[i.name],
                    ["MODEL.WEIGHTS", weights[i.name]["path"]], threads_per_job(FINETUNE_JOBS),
                )  # fmt: skip
                for i in INITS
            },
            FINETUNE_JOBS,
        )
        tuned = time.time()
        png = os.path.join(out, "predictions.png")
        draw = ["tools/visualize_predictions.py", "--config-file", FINETUNE, "--output", png]
        draw += ["MODEL.WEIGHTS", os.path.join(runs["insloc"], "model_final.pth")]
        print(f"\n=== predictions\n  python {' '.join(draw)}", flush=True)
        run_tool(draw, os.path.join(out, "predictions.log"), threads)
    except RuntimeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1

    print(f"\nheld-out {TEST_SET} ({FINETUNE}): COCO-style AP in percent, SEED 0")
    print(f"  {'initialisation':<24}{'box AP':>9}{'AP50':>9}{'AP75':>9}{'mask AP':>9}")
    for i in INITS:
        r = read_results(runs[i.name], TEST_SET)
        print(
            f"  {i.label:<24}" + "".join(f"{r[k]:>9.1f}" for k in ("box", "box50", "box75", "mask"))
        )
    print(
        "One seed: a gain counts only beyond the seed spread that benchmarks/bench_transfer.py "
        "measures\nfor this recipe (README: 'Does pretraining pay?')."
    )
    print(
        f"time: weights {(made - start) / 60:.1f} min, fine-tuning {(tuned - made) / 60:.1f} min, "
        f"all {(time.time() - start) / 60:.1f} min"
    )
    print("outputs:")
    rows = [
        ("pretraining", os.path.join(out, "insloc")),
        ("composites", os.path.join(out, "insloc", "composites.png")),
        ("control", weights["supervised"]["path"]),
        *(("fine-tuned", runs[i.name]) for i in INITS),
        ("predictions", png),
    ]
    for name, path in rows:
        print(f"  {name:<12} {path}")
    print("dense matching (not run by the demo): python tools/eval_matching.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
