"""Convert an insloc pretraining checkpoint into a plain state dict for fine-tuning.

python tools/convert_checkpoint.py output/run/model_final.pth r50_fpn_tv.pth --to torchvision
"""

import argparse
import os
import sys

from insloc.engine.checkpoint import atomic_save, load_checkpoint
from insloc.transfer.torchvision import convert_to_torchvision, detect_arch


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", help="insloc pretraining checkpoint (.pth)")
    parser.add_argument("output", help="where to write the converted state dict (must not exist)")
    parser.add_argument("--to", choices=["torchvision"], required=True, help="target library")
    args = parser.parse_args(argv)

    if os.path.exists(args.output):
        parser.error(f"{args.output} already exists; refusing to overwrite it")
    try:
        ckpt = load_checkpoint(args.input)
        if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
            raise ValueError("it has no 'model' state dict")
        arch = detect_arch(ckpt["model"])
    except (FileNotFoundError, ValueError) as e:
        parser.error(f"{args.input} is not an insloc pretraining checkpoint: {e}")
    converted = convert_to_torchvision(ckpt["model"], arch)
    atomic_save(converted, args.output)
    print(f"wrote {len(converted)} tensors ({arch}, torchvision names) to {args.output}")


if __name__ == "__main__":
    sys.exit(main())
