#!/usr/bin/env python
"""`make demo`: the whole loop on synthetic scenes, on CPU in a few minutes.

1. InsLoc pretraining of a tiny R-FPN (configs/quick/insloc_tiny_FPN_demo.yaml);
2. a tiny Mask R-CNN fine-tuned with few labels (configs/quick/det_demo_FPN.yaml), once from
   random initialisation and once from the InsLoc checkpoint, each evaluated on held-out scenes;
3. an AP table of both, and a PNG of the InsLoc-initialised detector's predictions.

python tools/run_demo.py --output-dir output/demo
"""

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRETRAIN = "configs/quick/insloc_tiny_FPN_demo.yaml"
FINETUNE = "configs/quick/det_demo_FPN.yaml"
TEST_SET = "synthetic_test"


def run(step: str, args: list) -> float:
    print(f"\n=== {step}: python {' '.join(args)}", flush=True)
    start = time.time()
    proc = subprocess.run([sys.executable, *args], cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"error: step '{step}' failed with exit code {proc.returncode}")
    return time.time() - start


def results_row(name: str, run_dir: str) -> str:
    with open(os.path.join(run_dir, "results.json")) as f:
        result = json.load(f)[TEST_SET]
    box, mask = result["bbox"], result.get("segm", {})
    cells = [box["AP"], box["AP50"], box["AP75"], mask.get("AP", float("nan"))]
    return f"  {name:<22}" + "".join(f"{v:>9.1f}" for v in cells)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", required=True, help="folder for every output (new)")
    args = parser.parse_args(argv)
    out = os.path.abspath(args.output_dir)
    if os.path.exists(out):
        print(f"error: {out} exists; choose another --output-dir", file=sys.stderr)
        return 2
    pre, rand, ins = (
        os.path.join(out, d) for d in ("pretrain", "finetune_random", "finetune_insloc")
    )
    weights = os.path.join(pre, "model_final.pth")
    pretrain = ["tools/pretrain_net.py", "--config-file", PRETRAIN, "OUTPUT_DIR", pre]
    finetune = ["tools/train_net.py", "--config-file", FINETUNE]
    times = {
        "pretrain": run("InsLoc pretraining", pretrain),
        "random": run("fine-tuning from random init", [*finetune, "OUTPUT_DIR", rand]),
        "insloc": run(
            "fine-tuning from the InsLoc checkpoint",
            [*finetune, "MODEL.WEIGHTS", weights, "OUTPUT_DIR", ins],
        ),
    }
    png = os.path.join(out, "predictions.png")
    run(
        "predictions",
        ["tools/visualize_predictions.py", "--config-file", FINETUNE, "--output", png,
         "MODEL.WEIGHTS", os.path.join(ins, "model_final.pth")],
    )  # fmt: skip
    print(f"\nheld-out {TEST_SET} ({FINETUNE}): COCO-style AP in percent")
    print(f"  {'initialisation':<22}{'box AP':>9}{'AP50':>9}{'AP75':>9}{'mask AP':>9}")
    print(results_row("random", rand))
    print(results_row("InsLoc (demo pretrain)", ins))
    minutes = {k: f"{v / 60:.1f} min" for k, v in times.items()}
    fine = f"{minutes['random']} + {minutes['insloc']}"
    print(f"time: pretraining {minutes['pretrain']}, fine-tuning {fine}")
    print("outputs:")
    for name, path in [
        ("pretraining", pre),
        ("composites", os.path.join(pre, "composites.png")),
        ("fine-tuned", rand),
        ("fine-tuned", ins),
        ("results", os.path.join(ins, "results.json")),
        ("predictions", png),
    ]:
        print(f"  {name:<12} {path}")
    print("dense matching (not run by the demo): python tools/eval_matching.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
