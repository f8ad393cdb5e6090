#!/usr/bin/env python
"""Save a PNG grid of the pretraining views a config produces (query | key, boxes drawn).

    python tools/visualize_pretrain_data.py --config-file configs/... [--num 16] \
        [--output grid.png] [KEY VALUE ...]
"""

import argparse
import os
import sys

from insloc.config import ConfigError, load_config
from insloc.data import build_pretrain_dataset
from insloc.utils.visualize import save_composite_grid


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-file", default="", help="recipe yaml")
    parser.add_argument("--num", type=int, default=16, help="number of samples (query/key pairs)")
    parser.add_argument("--output", default="pretrain_data_grid.png", help="PNG to write")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config_file, args.opts)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.num < 1:
        print(f"error: --num must be >= 1, got {args.num}", file=sys.stderr)
        return 2
    if os.path.exists(args.output):
        print(f"error: {args.output} exists; choose another --output", file=sys.stderr)
        return 2
    try:
        dataset = build_pretrain_dataset(cfg)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    samples = dataset.__getitems__([(0, i % len(dataset)) for i in range(args.num)])
    print(save_composite_grid(samples, args.output, max_items=args.num))
    return 0


if __name__ == "__main__":
    sys.exit(main())
