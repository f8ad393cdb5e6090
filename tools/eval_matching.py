#!/usr/bin/env python
"""Keypoint matching with dense features: PCK@0.05/0.1/0.15 on PF-PASCAL, PF-WILLOW, SPair-71k or
synthetic warps; writes OUTPUT_DIR/pck.json and prints a table naming the PCK protocol.

python tools/eval_matching.py --config-file configs/matching/eval_R50_res4.yaml \\
    MODEL.WEIGHTS resnet50.pth DATASETS.TEST ../shared/data/PF-WILLOW OUTPUT_DIR out/willow
python tools/eval_matching.py   # synthetic warps of synthetic scenes, random ResNet-50 res5
"""

import sys

import torch

from dense_match.datasets import build_matching_dataset
from dense_match.evaluate import evaluate_matching, resolve_protocol
from dense_match.model import DENSE_DEFAULTS, build_dense_model
from dense_match.report import format_table, write_pck_json
from insloc.engine.defaults import (
    default_argument_parser,
    parse_args,
    prepare_output_dir,
    run_config_tool,
)
from insloc.engine.launch import resolve_device


def main(argv=None) -> int:
    args = parse_args(default_argument_parser(__doc__, resume=False), argv)
    return run_config_tool(
        args,
        evaluate,
        tool="tools/eval_matching.py",
        tasks=("dense matching",),
        default_opts=DENSE_DEFAULTS,
    )


def evaluate(args, cfg) -> int:
    prepare_output_dir(cfg.OUTPUT_DIR, ["pck.json"])
    device = resolve_device(cfg.MODEL.DEVICE)
    dataset = build_matching_dataset(cfg)
    # SEED fixes what the file does not hold (random features, a head it lacks): one command,
    # one PCK.
    torch.manual_seed(cfg.SEED)
    model = build_dense_model(cfg).to(device)
    m = cfg.MATCHING
    result = evaluate_matching(
        model,
        dataset,
        resolve_protocol(cfg, dataset.name),
        side=cfg.DENSE.INPUT_SIZE,
        device=device,
        method=m.METHOD,
        temperature=m.TEMPERATURE,
        sigma_weighting=m.SIGMA_WEIGHTING,
        max_pairs=m.MAX_PAIRS,
    )
    if not result["pairs"]:
        name = cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else "the synthetic default"
        raise ValueError(f"no pair of {name} could be evaluated")
    result["seed"] = cfg.SEED
    path = write_pck_json(result, cfg.OUTPUT_DIR)
    print(format_table(result))
    extra = f"{result['pairs_per_sec']:.2f} pairs/s"
    if result["sigma_auc"] is not None:
        extra += f", sigma ROC AUC (correct@0.1 vs wrong) {result['sigma_auc']:.3f}"
    if result["pairs_skipped"]:
        extra += f", {result['pairs_skipped']} pairs skipped (unreadable images)"
    print(f"{extra}\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
