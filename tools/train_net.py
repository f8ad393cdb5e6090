#!/usr/bin/env python
"""Fine-tune and evaluate Faster / Mask R-CNN (R50-C4, R50-FPN) with the detectron2 protocol.

python tools/train_net.py --config-file configs/detection/coco_mask_rcnn_R50_FPN_1x.yaml \
    MODEL.WEIGHTS output/insloc_fpn/model_final.pth OUTPUT_DIR output/coco_fpn
torchrun --nproc_per_node 8 tools/train_net.py --config-file F [--resume] [--eval-only] [KEY VALUE]
python tools/train_net.py --engine detectron2 --config-file configs/detectron2/F  (needs detectron2)
"""

import logging
import os
import sys

from insloc.config import ConfigError, load_config
from insloc.engine.defaults import default_argument_parser, default_setup, parse_args
from insloc.engine.launch import launch, resolve_device
from insloc.engine.optim import scale_schedule_to_batch
from insloc.utils import comm

_ERRORS = (FileExistsError, FileNotFoundError, NotADirectoryError, ValueError, KeyError)


def main(args, cfg, scale_message: str) -> int:
    from insloc.engine.finetune import DetectionTrainer, evaluate_only

    try:
        logger = default_setup(cfg, args)
        if scale_message:
            logger.info(scale_message)
        if args.eval_only:
            evaluate_only(cfg, resume=args.resume)
            return 0
        trainer = DetectionTrainer(cfg, resume=args.resume)
    except _ERRORS as e:
        logging.getLogger("insloc").error(f"error: {e}")
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        trainer.train()
    except FloatingPointError as e:
        logger.error(str(e))
        return 1
    if comm.is_main_process():
        out = cfg.OUTPUT_DIR
        rows = [
            ("checkpoint", os.path.join(out, "model_final.pth")),
            ("results", os.path.join(out, "results.json")),
            (
                "detections",
                os.path.join(out, "inference", "<dataset>", "coco_instances_results.json"),
            ),
            ("metrics", os.path.join(out, "metrics.jsonl")),
            ("log", os.path.join(out, "log.txt")),
        ]
        logger.info("outputs:\n" + "\n".join(f"  {k:<12} {v}" for k, v in rows))
    return 0


def run_detectron2(args) -> int:
    try:
        from insloc.transfer.detectron2 import run_detectron2 as run
    except ImportError as e:
        print(f"error: --engine detectron2 needs detectron2 installed ({e})", file=sys.stderr)
        return 2
    try:  # run() returns the results dict (not an exit status); bad input is a one-line error
        run(args.config_file, args.opts, eval_only=args.eval_only, resume=args.resume)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    parser = default_argument_parser(__doc__.splitlines()[0])
    parser.add_argument("--eval-only", action="store_true", help="evaluate MODEL.WEIGHTS only")
    parser.add_argument(
        "--engine",
        choices=["insloc", "detectron2"],
        default="insloc",
        help="insloc's own models (default) or detectron2 itself, when it is installed",
    )
    args = parse_args(parser)
    if args.engine == "detectron2":
        sys.exit(run_detectron2(args))
    try:
        config = load_config(args.config_file, args.opts)
        config, message = scale_schedule_to_batch(config)
        resolve_device(config.MODEL.DEVICE)
    except (ConfigError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(launch(main, args, config, message, device=config.MODEL.DEVICE))
