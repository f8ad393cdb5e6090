#!/usr/bin/env python
"""Draw a detector's predictions (boxes, masks, class names) on test images, as one PNG.

python tools/visualize_predictions.py --config-file configs/detection/F.yaml \
    MODEL.WEIGHTS output/run/model_final.pth [--dataset NAME] [--num 8] [--output preds.png]
"""

import logging
import sys

import cv2
import torch

from insloc.data.detection import build_detection_test_loader
from insloc.engine.defaults import (
    default_argument_parser,
    parse_args,
    prepare_output_file,
    run_config_tool,
)
from insloc.engine.launch import resolve_device
from insloc.modeling import build_model
from insloc.transfer.weights import load_detection_weights
from insloc.utils.visualize_detections import draw_detections, save_image_grid


def main(argv=None) -> int:
    parser = default_argument_parser(__doc__, resume=False)
    parser.add_argument("--dataset", default="", help="test set (default: DATASETS.TEST[0])")
    parser.add_argument("--num", type=int, default=8, help="number of images")
    parser.add_argument("--score-thresh", type=float, default=0.5, help="lowest score drawn")
    parser.add_argument("--output", default="predictions.png", help="PNG to write (must not exist)")
    args = parse_args(parser, argv)
    return run_config_tool(args, draw, tool="tools/visualize_predictions.py", tasks=("detection",))


def draw(args, cfg) -> int:
    name = args.dataset or (cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else "")
    if not name:
        raise ValueError("no test set: pass --dataset NAME or set DATASETS.TEST")
    if args.num < 1:
        raise ValueError(f"--num must be >= 1, got {args.num}")
    prepare_output_file(args.output)
    print(visualize(cfg, name, args.num, args.score_thresh, args.output))
    return 0


@torch.no_grad()
def visualize(cfg, dataset_name: str, num: int, score_thresh: float, output: str) -> str:
    """Run MODEL.WEIGHTS on the first ``num`` images of ``dataset_name`` and draw the results."""
    device = resolve_device(cfg.MODEL.DEVICE)
    model = build_model(cfg).to(device).eval()
    if cfg.MODEL.WEIGHTS:
        load_detection_weights(model, cfg.MODEL.WEIGHTS, logging.getLogger("insloc"))
    loader, metadata = build_detection_test_loader(cfg, dataset_name, rank=0, world_size=1)
    drawn = []
    for batch in loader:
        sample = batch[0]
        out = {
            k: v.cpu()
            for k, v in model([{**sample, "image": sample["image"].to(device)}])[0].items()
        }
        image = sample["image"].permute(1, 2, 0).numpy()  # resized H' x W' x 3 RGB
        h, w = image.shape[:2]
        sx, sy = w / sample["width"], h / sample["height"]
        out["boxes"] = out["boxes"] * torch.tensor([sx, sy, sx, sy])
        if "masks" in out:
            out["masks"] = [
                cv2.resize(m.numpy().astype("uint8"), (w, h), interpolation=cv2.INTER_NEAREST)
                for m in out["masks"]
            ]
        drawn.append(draw_detections(image, out, metadata["thing_classes"], score_thresh))
        if len(drawn) == num:
            break
    return save_image_grid(drawn, output)


if __name__ == "__main__":
    sys.exit(main())
