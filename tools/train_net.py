#!/usr/bin/env python
"""Fine-tune and evaluate Faster / Mask R-CNN (R50-C4, R50-FPN) with the detectron2 protocol.

python tools/train_net.py --config-file configs/detection/coco_mask_rcnn_R50_FPN_1x.yaml \\
    MODEL.WEIGHTS output/insloc_fpn/model_final.pth OUTPUT_DIR output/coco_fpn
torchrun --nproc_per_node 8 tools/train_net.py --config-file F [--resume] [--eval-only] [KEY VALUE]
python tools/train_net.py --engine detectron2 --config-file configs/detectron2/F  (needs detectron2)
"""

import os
import sys

from insloc.engine.defaults import (
    default_argument_parser,
    log_outputs,
    parse_args,
    run_config_tool,
    run_tool,
    run_training,
)
from insloc.engine.finetune import DetectionTrainer, EvalOnlyTrainer
from insloc.engine.optim import scale_schedule_to_batch
from insloc.evaluation import inference_dir
from insloc.utils import comm


def train(args, cfg) -> int:
    cfg, scale_message = scale_schedule_to_batch(cfg)
    trainer_cls = EvalOnlyTrainer if args.eval_only else DetectionTrainer
    run_training(trainer_cls, cfg, args, notes=[scale_message] if scale_message else [])
    if comm.is_main_process():
        out = cfg.OUTPUT_DIR
        rows = [] if args.eval_only else [("checkpoint", os.path.join(out, "model_final.pth"))]
        if cfg.DATASETS.TEST:
            rows.append(("results", os.path.join(out, "results.json")))
        for name in cfg.DATASETS.TEST:
            detections = os.path.join(inference_dir(cfg, name), "coco_instances_results.json")
            rows.append(("detections", detections))
        if not args.eval_only:
            rows.append(("metrics", os.path.join(out, "metrics.jsonl")))
        rows.append(("log", os.path.join(out, "log.txt")))
        log_outputs(rows)
    return 0


def run_detectron2(args) -> int:
    try:
        from insloc.transfer.detectron2 import run_detectron2 as run
    except ImportError as e:
        print(f"error: --engine detectron2 needs detectron2 installed ({e})", file=sys.stderr)
        return 2

    def run_protocol() -> int:  # run() returns the results dict, not an exit status
        run(args.config_file, args.opts, eval_only=args.eval_only, resume=args.resume)
        return 0

    return run_tool(run_protocol)


def main(argv=None) -> int:
    parser = default_argument_parser(__doc__)
    parser.add_argument("--eval-only", action="store_true", help="evaluate MODEL.WEIGHTS only")
    parser.add_argument(
        "--engine",
        choices=["insloc", "detectron2"],
        default="insloc",
        help="insloc's own models (default) or detectron2 itself, when it is installed",
    )
    args = parse_args(parser, argv)
    if args.engine == "detectron2":
        return run_detectron2(args)
    tasks = ("detection",)
    return run_config_tool(args, train, tool="tools/train_net.py", tasks=tasks, training=True)


if __name__ == "__main__":
    sys.exit(main())
