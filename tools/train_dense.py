#!/usr/bin/env python
"""Train a dense head (probabilistic introspection or AnchorNet) in one process or under torchrun.

python tools/train_dense.py --config-file configs/matching/introspection_R50_dilated.yaml
torchrun --nproc_per_node 8 tools/train_dense.py --config-file ... [--resume] [KEY VALUE ...]
"""

import logging
import os
import sys

from dense_match.trainer import DenseTrainer
from insloc.engine.defaults import (
    default_argument_parser,
    log_outputs,
    parse_args,
    run_config_tool,
    run_training,
)
from insloc.utils import comm


def train(args, cfg) -> int:
    history = run_training(DenseTrainer, cfg, args).history
    if comm.is_main_process():
        logger = logging.getLogger("insloc")
        if len(history) >= 2:
            first, last = history[min(history)], history[max(history)]
            logger.info(
                f"{last['dataset']} PCK@0.1 ({last['norm']}, {last['resize']} pixels, "
                f"{last['average']}): initial network {first['pck@0.1']:.1f} -> trained network "
                f"{last['pck@0.1']:.1f}"
            )
        out = cfg.OUTPUT_DIR
        rows = [
            ("checkpoint", os.path.join(out, "model_final.pth")),
            ("evaluate", f"python tools/eval_matching.py --config-file {args.config_file} "
             f"MODEL.WEIGHTS {os.path.join(out, 'model_final.pth')}"),
            ("metrics", os.path.join(out, "metrics.jsonl")),
            ("config", os.path.join(out, "config.yaml")),
            ("log", os.path.join(out, "log.txt")),
        ]  # fmt: skip
        log_outputs(rows, logger)
    return 0


def main(argv=None) -> int:
    args = parse_args(default_argument_parser(__doc__), argv)
    tasks = ("dense matching",)
    return run_config_tool(args, train, tool="tools/train_dense.py", tasks=tasks, training=True)


if __name__ == "__main__":
    sys.exit(main())
