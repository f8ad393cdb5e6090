#!/usr/bin/env python
"""Save a PNG grid of the pretraining views a config produces (query | key, boxes drawn).

    python tools/visualize_pretrain_data.py --config-file configs/... [--num 16] \
        [--output grid.png] [KEY VALUE ...]
"""

import sys

from insloc.data import build_pretrain_dataset
from insloc.engine.defaults import (
    default_argument_parser,
    parse_args,
    prepare_output_file,
    run_config_tool,
)
from insloc.utils.visualize import save_composite_grid


def main(argv=None) -> int:
    parser = default_argument_parser(__doc__, resume=False)
    parser.add_argument("--num", type=int, default=16, help="number of samples (query/key pairs)")
    parser.add_argument("--output", default="pretrain_data_grid.png", help="PNG to write")
    return run_config_tool(
        parse_args(parser, argv),
        draw,
        tool="tools/visualize_pretrain_data.py",
        tasks=("pretraining", "pretext"),
    )


def draw(args, cfg) -> int:
    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    prepare_output_file(args.output)
    dataset = build_pretrain_dataset(cfg)
    samples = dataset.__getitems__([(0, i % len(dataset)) for i in range(args.num)])
    print(save_composite_grid(samples, args.output, max_items=args.num))
    return 0


if __name__ == "__main__":
    sys.exit(main())
