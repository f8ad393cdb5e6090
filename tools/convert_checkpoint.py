"""Convert an insloc checkpoint for another library: torchvision or detectron2.

python tools/convert_checkpoint.py output/run/model_final.pth r50_fpn_tv.pth --to torchvision
python tools/convert_checkpoint.py output/run/model_final.pth r50_fpn.pkl --to detectron2

``--to torchvision`` takes a pretraining checkpoint, or a fine-tuning checkpoint whose trunk it
writes as a torchvision ResNet state dict (a trunk trained with labels, for ``MODEL.WEIGHTS``,
``linear_eval`` or ``eval_matching``). ``--to detectron2`` takes a pretraining
checkpoint (C4 and MoCo: trunk + ``roi_heads.res5``; FPN: backbone, FPN and the box head's convs and
first fc) or a fine-tuning checkpoint (the whole detector), and writes detectron2's pickle
``{"model": {name: numpy array}, "__author__": "insloc", "matching_heuristics": True}``.
"""

import sys

from insloc.engine.defaults import default_argument_parser, prepare_output_file, run_tool
from insloc.transfer.detectron2_names import to_detectron2
from insloc.transfer.pickle_io import write_detectron2_pkl
from insloc.transfer.torchvision import convert_to_torchvision, detect_arch, pretraining_to_detector
from insloc.transfer.weight_file import read_weight_file
from insloc.utils.file_io import atomic_save


def main(argv=None) -> int:
    parser = default_argument_parser(__doc__, config=False, resume=False)
    parser.add_argument("input", help="insloc pretraining or fine-tuning checkpoint (.pth)")
    parser.add_argument("output", help="where to write the converted weights (must not exist)")
    parser.add_argument("--to", choices=["torchvision", "detectron2"], required=True)
    return run_tool(convert, parser.parse_args(argv))


def convert(args) -> int:
    prepare_output_file(args.output, name="output")
    weights = read_weight_file(args.input)
    expected = "insloc pretraining or fine-tuning (detection) checkpoint"
    tasks = ("pretraining", "detection") + (("pretext",) if args.to == "torchvision" else ())
    weights.require(tasks, f"an {expected} for --to {args.to}")
    state = weights.tensors
    if weights.task == "detection" and args.to == "detectron2":
        arch = "detector"
        converted = to_detectron2(state)
    else:
        try:
            arch = detect_arch(state)
        except ValueError as e:
            raise ValueError(f"{args.input} is not an {expected}: {e}") from None
        if args.to == "torchvision":
            converted = convert_to_torchvision(state, arch)  # a detector: its trunk
        else:
            converted = to_detectron2(
                pretraining_to_detector(state, "fpn" if arch == "fpn" else "c4")
            )
    if args.to == "torchvision":
        atomic_save(converted, args.output)
    else:
        write_detectron2_pkl(converted, args.output)
    print(f"wrote {len(converted)} tensors ({arch}, {args.to} names) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
