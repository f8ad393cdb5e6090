#!/usr/bin/env python
"""Train a dense head (probabilistic introspection or AnchorNet) in one process or under torchrun.

python tools/train_dense.py --config-file configs/matching/introspection_R50_dilated.yaml
torchrun --nproc_per_node 8 tools/train_dense.py --config-file ... [--resume] [KEY VALUE ...]
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
    from dense_match.trainer import DenseTrainer

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
        logger.info("outputs:\n" + "\n".join(f"  {k:<12} {v}" for k, v in rows))
    return 0


def main(argv=None) -> int:
    return run_tool(_launch, parse_args(default_argument_parser(__doc__.splitlines()[0]), argv))


def _launch(args) -> int:
    cfg = load_config(args.config_file, args.opts)
    check_task(cfg, args.config_file, "tools/train_dense.py", ("dense matching",))
    resolve_device(cfg.MODEL.DEVICE)
    return launch(train, args, cfg, device=cfg.MODEL.DEVICE)


if __name__ == "__main__":
    sys.exit(main())
