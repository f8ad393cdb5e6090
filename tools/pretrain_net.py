#!/usr/bin/env python
"""Pretrain InsLoc, MoCo v2 or a classic pretext task: in one process, on one GPU, or on many GPUs
and nodes under torchrun.

python tools/pretrain_net.py --config-file configs/pretrain/insloc_R50_FPN_200ep.yaml
torchrun --nproc_per_node 8 tools/pretrain_net.py --config-file ... [--resume] [KEY VALUE ...]
"""

import logging
import os
import sys

from insloc.engine.defaults import (
    default_argument_parser,
    log_outputs,
    parse_args,
    run_config_tool,
    run_training,
)
from insloc.engine.pretrain import PretrainTrainer
from insloc.utils import comm


def train(args, cfg) -> int:
    trainer = run_training(PretrainTrainer, cfg, args)
    if comm.is_main_process():
        _print_summary(cfg, trainer.history, logging.getLogger("insloc"))
    return 0


def _print_summary(cfg, history: dict, logger) -> None:
    if len(history) >= 2:
        first, last = history[min(history)], history[max(history)]
        name = "mean" if "mean" in last else next(iter(last))
        logger.info(
            f"held-out instance discrimination ({cfg.TEST.INSTANCE_DISC_SAMPLES} samples, chance "
            f"{100 / cfg.TEST.INSTANCE_DISC_SAMPLES:.1f}%): initial network "
            f"{100 * first[name]:.1f}% -> trained network {100 * last[name]:.1f}%"
        )
    out = cfg.OUTPUT_DIR
    rows = [
        ("checkpoint", os.path.join(out, "model_final.pth")),
        ("metrics", os.path.join(out, "metrics.jsonl")),
        ("tensorboard", f"tensorboard --logdir {os.path.join(out, 'tensorboard')}"),
        ("composites", os.path.join(out, "composites.png")),
        ("config", os.path.join(out, "config.yaml")),
        ("log", os.path.join(out, "log.txt")),
    ]
    if not cfg.VIS_SAMPLES:
        rows.pop(3)
    log_outputs(rows, logger)


def main(argv=None) -> int:
    args = parse_args(default_argument_parser(__doc__), argv)
    tasks = ("pretraining", "pretext")
    return run_config_tool(args, train, tool="tools/pretrain_net.py", tasks=tasks, training=True)


if __name__ == "__main__":
    sys.exit(main())
