#!/usr/bin/env python
"""Pretrain InsLoc or MoCo v2: in one process, on one GPU, or on many GPUs and nodes under torchrun.

python tools/pretrain_net.py --config-file configs/pretrain/insloc_R50_FPN_200ep.yaml
torchrun --nproc_per_node 8 tools/pretrain_net.py --config-file ... [--resume] [KEY VALUE ...]
"""

import os
import sys

from insloc.config import ConfigError, load_config
from insloc.engine.defaults import default_argument_parser, default_setup, parse_args
from insloc.engine.launch import launch, resolve_device
from insloc.utils import comm


def main(args, cfg) -> int:
    from insloc.engine.pretrain import PretrainTrainer

    try:
        logger = default_setup(cfg, args)
        trainer = PretrainTrainer(cfg, resume=args.resume)
    except (FileExistsError, FileNotFoundError, NotADirectoryError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        history = trainer.train()
    except FloatingPointError as e:
        logger.error(str(e))
        return 1
    if comm.is_main_process():
        _print_summary(cfg, history, logger)
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


if __name__ == "__main__":
    args = parse_args(default_argument_parser(__doc__.splitlines()[0]))
    try:
        config = load_config(args.config_file, args.opts)
        resolve_device(config.MODEL.DEVICE)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(launch(main, args, config, device=config.MODEL.DEVICE))
