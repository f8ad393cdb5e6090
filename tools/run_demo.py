#!/usr/bin/env python
"""`make demo`: does pretraining pay? The whole loop on synthetic scenes, on CPU in minutes.

1. Weights: an InsLoc pretraining of a tiny R-FPN on 512 unlabelled scenes
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
    read_results,
    run_tool,
    threads_per_job,
    weights_and_finetunings,
)

FINETUNE = "configs/quick/det_demo_FPN.yaml"
TEST_SET = "synthetic_test"
INITS = (
    Init("random", "random init"),
    Init("supervised", "supervised (control)", "configs/quick/det_control_FPN.yaml", True),
    Init("insloc", "InsLoc (demo pretrain)", "configs/quick/insloc_tiny_FPN_demo.yaml"),
)
# Runs at once, one math thread each: the two trainings that make weights and the fine-tuning from
# random init start together, each other fine-tuning as soon as its weights exist (three
# single-threaded runs keep two cores busy; one thread per run avoids spinning thread pools).
JOBS = 3


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True, help="folder for every output (new)")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.output_dir)
    if os.path.exists(out):
        print(f"error: {out} exists; choose another --output-dir", file=sys.stderr)
        return 2
    start = time.time()
    runs = {i.name: os.path.join(out, f"finetune_{i.name}") for i in INITS}
    try:
        print(f"\n=== {JOBS} runs at once (logs beside each folder):", flush=True)
        weights, _ = weights_and_finetunings(
            INITS, out, [], {n: (n, d, []) for n, d in runs.items()}, FINETUNE, JOBS
        )
        tuned = time.time()
        png = os.path.join(out, "predictions.png")
        draw = ["tools/visualize_predictions.py", "--config-file", FINETUNE, "--output", png]
        draw += ["MODEL.WEIGHTS", os.path.join(runs["insloc"], "model_final.pth")]
        print(f"\n=== predictions\n  python {' '.join(draw)}", flush=True)
        run_tool(draw, os.path.join(out, "predictions.log"), threads_per_job(1))
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
    with open(os.path.join(out, "insloc", "log.txt")) as f:  # pretrain_net.py's closing summary
        summary = [line for line in f if "initial network" in line]
    if summary:
        print("InsLoc pretraining, " + summary[-1].split("] ", 1)[-1].strip())
    print(
        f"time: trainings {(tuned - start) / 60:.1f} min (each run's own: "
        + ", ".join(f"{n} {w['seconds'] / 60:.1f} min" for n, w in weights.items() if w["command"])
        + f"), all {(time.time() - start) / 60:.1f} min"
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
