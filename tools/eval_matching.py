#!/usr/bin/env python
"""Keypoint matching with dense features: PCK@0.05/0.1/0.15 on PF-PASCAL, PF-WILLOW, SPair-71k or
synthetic warps; writes OUTPUT_DIR/pck.json and prints a table naming the PCK protocol.

python tools/eval_matching.py --config-file configs/matching/eval_R50_res4.yaml \\
    MODEL.WEIGHTS resnet50.pth DATASETS.TEST ../shared/data/PF-WILLOW OUTPUT_DIR out/willow
python tools/eval_matching.py   # synthetic warps of synthetic scenes, random ResNet-50 res5
"""

import argparse
import sys

import torch

from insloc.config import load_config
from insloc.engine.defaults import check_task, prepare_output_dir, run_tool
from insloc.engine.launch import resolve_device


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", default="", metavar="FILE", help="path to a yaml recipe")
    parser.add_argument("opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides")
    return run_tool(evaluate, parser.parse_args(argv))


def evaluate(args) -> int:
    opts = list(args.opts)
    if not args.config_file:  # the defaults are a pretraining recipe: run the dense one
        opts = ["MODEL.META_ARCHITECTURE", "Dense", "MODEL.BACKBONE.NAME", "resnet", *opts]
    cfg = load_config(args.config_file, opts)
    check_task(cfg, args.config_file, "tools/eval_matching.py", ("dense matching",))
    prepare_output_dir(cfg.OUTPUT_DIR, ["pck.json"])
    device = resolve_device(cfg.MODEL.DEVICE)

    from dense_match.datasets import build_matching_dataset
    from dense_match.evaluate import evaluate_matching, resolve_protocol
    from dense_match.model import build_dense_model
    from dense_match.report import format_table, write_pck_json

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
