#!/usr/bin/env python
"""Make a folder-per-class classification set of object crops from a COCO json.

python tools/make_crops.py ../shared/data/coco128/annotations/instances_train2017.json \
    output/coco128_crops --image-root ../shared/data/coco128/train2017
"""

import sys

from insloc.data.coco_crops import make_crops
from insloc.engine.defaults import default_argument_parser, prepare_output_dir, run_tool


def main(argv=None) -> int:
    p = default_argument_parser(__doc__, config=False, resume=False)
    p.add_argument("json", help="COCO instances json")
    p.add_argument("output", help="folder to write train/<class>/ and val/<class>/ in (new ones)")
    p.add_argument("--image-root", default="", help="folder of the images (default: the json's)")
    p.add_argument("--min-size", type=int, default=32, help="smallest box side kept, pixels")
    p.add_argument(
        "--context", type=float, default=0.1, help="margin added on each side, x box size"
    )
    p.add_argument("--val-fraction", type=float, default=0.25, help="share of images in val/")
    p.add_argument("--min-per-class", type=int, default=2, help="fewest crops per class and split")
    p.add_argument("--seed", type=int, default=0)
    return run_tool(crop, p.parse_args(argv))


def crop(args) -> int:
    prepare_output_dir(args.output, ["train", "val"], name="output")
    counts = make_crops(
        args.json,
        args.output,
        args.image_root,
        min_size=args.min_size,
        context=args.context,
        val_fraction=args.val_fraction,
        min_per_class=args.min_per_class,
        seed=args.seed,
    )
    for split in ("train", "val"):
        n = sum(counts[split].values())
        print(f"{split}: {n} crops in {len(counts[split])} classes")
    if counts["skipped_images"]:
        print(f"skipped {counts['skipped_images']} unreadable images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
