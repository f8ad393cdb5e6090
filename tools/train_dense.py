#!/usr/bin/env python
"""Train a dense head (probabilistic introspection or AnchorNet) in one process or under torchrun.

python tools/train_dense.py --config-file configs/matching/introspection_R50_dilated.yaml
torchrun --nproc_per_node 8 tools/train_dense.py --config-file ... [--resume] [KEY VALUE ...]
"""

import os
import sys

from insloc.config import ConfigError, load_config
from insloc.engine.defaults import default_argument_parser, default_setup
from insloc.engine.launch import launch, resolve_device
from insloc.utils import comm


def main(args, cfg) -> int:
    from dense_match.trainer import DenseTrainer

    try:
        logger = default_setup(cfg, args)
        trainer = DenseTrainer(cfg, resume=args.resume)
    except (FileExistsError, FileNotFoundError, NotADirectoryError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        history = trainer.train()
    except FloatingPointError as e:
        logger.error(str(e))
        return 1
    if comm.is_main_process():
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


if __name__ == "__main__":
    args = default_argument_parser(__doc__.splitlines()[0]).parse_args()
    try:
        config = load_config(args.config_file, args.opts)
        resolve_device(config.MODEL.DEVICE)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(launch(main, args, config, device=config.MODEL.DEVICE))
