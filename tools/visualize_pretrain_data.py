#!/usr/bin/env python
"""Save a PNG grid of the pretraining views a config produces (query | key, boxes drawn).

    python tools/visualize_pretrain_data.py --config-file configs/... [--num 16] \
        [--output grid.png] [KEY VALUE ...]
"""

import argparse
import sys

from insloc.config import load_config
from insloc.data import build_pretrain_dataset
from insloc.engine.defaults import check_task, prepare_output_file, run_tool
from insloc.utils.visualize import save_composite_grid


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", default="", help="recipe yaml")
    parser.add_argument("--num", type=int, default=16, help="number of samples (query/key pairs)")
    parser.add_argument("--output", default="pretrain_data_grid.png", help="PNG to write")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return run_tool(draw, parser.parse_args(argv))


def draw(args) -> int:
    cfg = load_config(args.config_file, args.opts)
    check_task(
        cfg, args.config_file, "tools/visualize_pretrain_data.py", ("pretraining", "pretext")
    )
    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    prepare_output_file(args.output)
    dataset = build_pretrain_dataset(cfg)
    samples = dataset.__getitems__([(0, i % len(dataset)) for i in range(args.num)])
    print(save_composite_grid(samples, args.output, max_items=args.num))
    return 0


if __name__ == "__main__":
    sys.exit(main())
