#!/usr/bin/env python
"""Draw transferred keypoints (green: correct at --alpha, red: wrong) and the sigma map of pairs
of DATASETS.TEST as PNG files in OUTPUT_DIR/matches/.

python tools/visualize_matches.py --config-file configs/matching/introspection_R50_dilated.yaml \\
    --num-pairs 8 MODEL.WEIGHTS out/model_final.pth DATASETS.TEST ../shared/data/PF-WILLOW
"""

import os
import sys

import cv2
import torch

from dense_match.datasets import build_matching_dataset
from dense_match.evaluate import match_pair, resolve_protocol
from dense_match.model import DENSE_DEFAULTS, build_dense_model
from dense_match.pck import PCKMeter, norm_size
from dense_match.visualize import draw_matches
from insloc.engine.defaults import (
    default_argument_parser,
    parse_args,
    prepare_output_dir,
    run_config_tool,
)
from insloc.engine.launch import resolve_device


def main(argv=None) -> int:
    parser = default_argument_parser(__doc__, resume=False)
    parser.add_argument("--num-pairs", type=int, default=8, help="first N pairs of the dataset")
    parser.add_argument("--alpha", type=float, default=0.1, help="PCK threshold for the colours")
    return run_config_tool(
        parse_args(parser, argv),
        draw,
        tool="tools/visualize_matches.py",
        tasks=("dense matching",),
        default_opts=DENSE_DEFAULTS,
    )


def draw(args, cfg) -> int:
    prepare_output_dir(cfg.OUTPUT_DIR, ["matches"])
    device = resolve_device(cfg.MODEL.DEVICE)
    dataset = build_matching_dataset(cfg)
    torch.manual_seed(cfg.SEED)  # the same drawing for the same command, random weights included
    model = build_dense_model(cfg).to(device).eval()
    protocol = resolve_protocol(cfg, dataset.name)
    folder = os.path.join(cfg.OUTPUT_DIR, "matches")
    os.makedirs(folder, exist_ok=True)
    m = cfg.MATCHING
    for i in range(min(args.num_pairs, len(dataset))):
        pair = dataset[i]
        res = match_pair(
            model, pair, cfg.DENSE.INPUT_SIZE, device, m.METHOD, m.TEMPERATURE, m.SIGMA_WEIGHTING
        )
        trg_hw = pair["trg_image"].shape[:2]
        size = norm_size(protocol["norm"], pair["trg_kps"], trg_hw, pair.get("trg_bbox"))
        meter = PCKMeter((args.alpha,), protocol["average"])
        correct = meter.add(res["pred"], pair["trg_kps"], size, trg_hw, src_valid=res["src_valid"])
        image = draw_matches(pair, res["pred"], correct[:, 0], res["trg_sigma"])
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in pair["name"])
        path = os.path.join(folder, f"{i:04d}_{name}.png")
        cv2.imwrite(path, image[..., ::-1])
        print(f"{path}: {int(correct[:, 0].sum())}/{len(correct)} correct at alpha {args.alpha} "
              f"({protocol['norm']} normalisation)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
