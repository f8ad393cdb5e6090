#!/usr/bin/env python
"""Pretrain InsLoc or MoCo v2: in one process, on one GPU, or on many GPUs and nodes under torchrun.

python tools/pretrain_net.py --config-file configs/pretrain/insloc_R50_FPN_200ep.yaml
torchrun --nproc_per_node 8 tools/pretrain_net.py --config-file ... [--resume] [KEY VALUE ...]
"""

import logging
import os
import sys

from insloc.config import load_config
from insloc.engine.defaults import (
    check_task,
    default_argument_parser,
    parse_args,
    run_tool,
    run_training,
)
from insloc.engine.launch import launch, resolve_device
from insloc.utils import comm


def train(args, cfg) -> int:
    from insloc.engine.pretrain import PretrainTrainer

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
    logger.info("outputs:\n" + "\n".join(f"  {k:<12} {v}" for k, v in rows))


def main(argv=None) -> int:
    return run_tool(_launch, parse_args(default_argument_parser(__doc__.splitlines()[0]), argv))


def _launch(args) -> int:
    cfg = load_config(args.config_file, args.opts)
    check_task(cfg, args.config_file, "tools/pretrain_net.py", ("pretraining", "pretext"))
    resolve_device(cfg.MODEL.DEVICE)
    return launch(train, args, cfg, device=cfg.MODEL.DEVICE)


if __name__ == "__main__":
    sys.exit(main())
