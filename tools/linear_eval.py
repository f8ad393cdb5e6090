#!/usr/bin/env python
"""Linear evaluation of frozen features, per layer, for one or more checkpoints side by side.

python tools/linear_eval.py --data datasets/cifar-10-batches-py \
    --checkpoint rotnet=output/rotnet/model_final.pth --checkpoint tv=resnet50.pth \
    --layers block1 block2 block3 block4 pre-logits --output output/linear_eval
"""

import os
import sys

import torch

from insloc.config import load_config
from insloc.data.classification import load_classification_split, subset_per_class
from insloc.engine.defaults import default_argument_parser, prepare_output_dir, run_tool
from insloc.evaluation import PROBES, evaluate_layers, load_trunk, random_trunk
from insloc.evaluation.probes.report import format_table, plot_accuracy_by_layer, save_json
from insloc.utils.logger import console_log

OUTPUTS = ("results.json", "accuracy_by_layer.png")


def parse_args(argv=None):
    p = default_argument_parser(__doc__, config=False, resume=False)
    p.add_argument(
        "--data",
        required=True,
        help="CIFAR-10 python folder, STL-10 binary folder, "
        "or a folder with train/ and val/ (or test/) class folders",
    )
    p.add_argument(
        "--checkpoint",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="an insloc pretraining checkpoint or a torchvision ResNet state dict",
    )
    p.add_argument(
        "--random-init",
        action="append",
        default=[],
        metavar="[NAME=]CONFIG",
        help="the randomly initialised trunk of a config, as a baseline",
    )
    p.add_argument(
        "--layers",
        nargs="+",
        default=["pre-logits"],
        help="feature taps ('all': every tap of each trunk)",
    )
    p.add_argument("--probe", choices=PROBES, default="logreg")
    p.add_argument(
        "--backend",
        choices=("sklearn", "torch"),
        default="sklearn",
        help="L-BFGS of the logistic regression",
    )
    p.add_argument(
        "--balanced",
        action="store_true",
        help="imbalanced classes: weight classes equally, choose C and report by mean per-class "
        "accuracy",
    )
    p.add_argument("--grid", type=int, default=1, help="pool each map to GRID x GRID cells")
    p.add_argument("--resize", type=int, default=0, help="shorter side before the crop (0: keep)")
    p.add_argument("--crop", type=int, default=0, help="centre crop side (0: none)")
    p.add_argument(
        "--labels-per-class",
        type=int,
        default=0,
        help="semi-supervised: train on this many labels per class (0: all)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--output", default="", help="folder for results.json and accuracy_by_layer.png")
    return p.parse_args(argv)


def _named(spec: str):
    name, sep, path = spec.partition("=")
    return (name, path) if sep else (os.path.splitext(os.path.basename(spec))[0], spec)


def main(argv=None) -> int:
    with console_log():  # the library's lines: which weights each trunk was read from
        return run_tool(evaluate, parse_args(argv))


def evaluate(args) -> int:
    if not args.checkpoint and not args.random_init:
        raise ValueError("give at least one --checkpoint or --random-init")
    if args.output:
        prepare_output_dir(args.output, OUTPUTS, name="--output")
    trunks = {}
    for spec in args.checkpoint:
        name, path = _named(spec)
        trunks[name] = load_trunk(path)
    for spec in args.random_init:
        name, path = _named(spec)
        trunks[name if "=" in spec else f"random {name}"] = random_trunk(
            load_config(path), args.seed
        )
    train = load_classification_split(args.data, "train")
    test = load_classification_split(args.data, "test")
    if args.labels_per_class:
        train = train.subset(subset_per_class(train.labels, args.labels_per_class, args.seed))
    results, skipped = {}, {}  # skipped: split -> indices of unreadable images, left out
    for name, trunk in trunks.items():
        layers = trunk.tap_names if args.layers == ["all"] else args.layers
        print(f"{name}: {trunk.description}; {len(train)} train / {len(test)} test images")
        results[name] = evaluate_layers(
            trunk,
            train,
            test,
            layers,
            grid=args.grid,
            resize_to=args.resize,
            crop=args.crop,
            batch_size=args.batch_size,
            device=torch.device(args.device),
            probe=args.probe,
            backend=args.backend,
            balanced=args.balanced,
            seed=args.seed,
            skipped=skipped,
        )
    metric = "mean_class_accuracy" if args.balanced else "accuracy"
    print(f"\n{args.probe} probe, test {metric.replace('_', ' ')} (%) on {test.description}:")
    print(format_table(results, metric))
    sets = {"train": train, "test": test}
    bad = {split: sorted(sets[split].name(i) for i in skipped.get(split, ())) for split in sets}
    if bad["train"] or bad["test"]:
        first = (bad["train"] + bad["test"])[0]
        print(
            f"skipped unreadable images, left out of features and labels: {len(bad['train'])} "
            f"train, {len(bad['test'])} test (first: {first})"
        )
    if args.output:
        os.makedirs(args.output, exist_ok=True)
        meta = {**vars(args), "skipped_images": bad}
        save_json(results, os.path.join(args.output, "results.json"), meta)
        plot_accuracy_by_layer(
            results,
            os.path.join(args.output, "accuracy_by_layer.png"),
            os.path.basename(args.data.rstrip("/")),
        )
        print(f"wrote {args.output}/results.json and accuracy_by_layer.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
