"""The detection-transfer protocol run by detectron2 itself (optional: needs detectron2 installed).

Nothing in insloc imports this module; ``tools/train_net.py --engine detectron2`` does. Importing it
registers the two heads of the published transfer configs in detectron2's registries:

- ``Res5ROIHeadsExtraNorm`` (MoCo's C4 configs): ``Res5ROIHeads`` with one more norm layer after
  res5, named ``roi_heads.res5.norm`` as in MoCo's released weights.
- ``FastRCNNConvFCHeadExtraNorm`` (InsLoc's FPN configs): ``FastRCNNConvFCHead`` with one more norm
  layer after the last fc, named ``roi_heads.box_head.fc_extra_norm`` as in InsLoc's weights.

``run_detectron2`` trains and/or evaluates a ``configs/detectron2/*.yaml`` recipe with detectron2's
own trainer, evaluators and checkpointer, and writes ``OUTPUT_DIR/results.json`` in insloc's layout.
"""

import argparse
import json
import logging
import os

try:
    # detectron2 reads its dataset root at import; insloc's variable takes precedence as in insloc
    if "INSLOC_DATASETS" in os.environ:
        os.environ["DETECTRON2_DATASETS"] = os.environ["INSLOC_DATASETS"]
    import detectron2  # noqa: F401
except ImportError as e:
    raise ImportError(
        "insloc.transfer.detectron2 needs detectron2, which is not on PyPI: build it from "
        "https://github.com/facebookresearch/detectron2 (see its INSTALL.md), or use insloc's own "
        "engine (tools/train_net.py without --engine detectron2)"
    ) from e

import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import configurable, get_cfg
from detectron2.data import MetadataCatalog
from detectron2.engine import DefaultTrainer, default_setup, launch
from detectron2.evaluation import (
    COCOEvaluator,
    PascalVOCDetectionEvaluator,
    inference_on_dataset,
)
from detectron2.layers import get_norm
from detectron2.modeling.roi_heads import (
    ROI_BOX_HEAD_REGISTRY,
    ROI_HEADS_REGISTRY,
    FastRCNNConvFCHead,
    Res5ROIHeads,
)
from detectron2.utils import comm

from insloc.utils.file_io import atomic_write_text

from .weight_file import read_weight_file

logger = logging.getLogger(__name__)

# the norm keys of the protocol configs; in one process they are plain BN (same weights and names)
_NORM_KEYS = (
    ("MODEL", "RESNETS", "NORM"),
    ("MODEL", "FPN", "NORM"),
    ("MODEL", "ROI_BOX_HEAD", "NORM"),
    ("MODEL", "ROI_MASK_HEAD", "NORM"),
)


class Res5ROIHeadsExtraNorm(Res5ROIHeads):
    """``Res5ROIHeads`` whose res5 ends with a norm layer (``MODEL.RESNETS.NORM``), as in MoCo.

    The norm is a child of the ``res5`` sequential, so it also acts on the mask branch, which reads
    res5's output.
    """

    @classmethod
    def _build_res5_block(cls, cfg):
        res5, out_channels = super()._build_res5_block(cfg)
        norm = get_norm(cfg.MODEL.RESNETS.NORM, out_channels)
        if norm is None:
            raise ValueError("Res5ROIHeadsExtraNorm needs MODEL.RESNETS.NORM (e.g. 'SyncBN')")
        res5.add_module("norm", norm)
        return res5, out_channels


class FastRCNNConvFCHeadExtraNorm(FastRCNNConvFCHead):
    """``FastRCNNConvFCHead`` followed by a norm layer (``MODEL.ROI_BOX_HEAD.NORM``) on its output
    features, as in InsLoc's FPN transfer configs (4 convs + 1 fc)."""

    @configurable
    def __init__(self, input_shape, *, conv_dims, fc_dims, conv_norm=""):
        super().__init__(input_shape, conv_dims=conv_dims, fc_dims=fc_dims, conv_norm=conv_norm)
        if not fc_dims or not conv_norm:
            raise ValueError(
                "FastRCNNConvFCHeadExtraNorm needs MODEL.ROI_BOX_HEAD.NUM_FC >= 1 and a "
                "MODEL.ROI_BOX_HEAD.NORM"
            )
        self.fc_extra_norm = get_norm(conv_norm, fc_dims[-1])

    def forward(self, x):
        """Args: x: M x C x R x R pooled features. Returns: M x fc_dim."""
        for layer in self.children():
            if layer is not self.fc_extra_norm:
                x = layer(x)
        # detectron2's norms are 2-d batch norms: view M x fc_dim as M x fc_dim x 1 x 1
        return self.fc_extra_norm(x[:, :, None, None]).flatten(1)


def register_heads() -> None:
    """Put the two heads in detectron2's registries (once; importing this module does it)."""
    if "Res5ROIHeadsExtraNorm" not in ROI_HEADS_REGISTRY:
        ROI_HEADS_REGISTRY.register(Res5ROIHeadsExtraNorm)
    if "FastRCNNConvFCHeadExtraNorm" not in ROI_BOX_HEAD_REGISTRY:
        ROI_BOX_HEAD_REGISTRY.register(FastRCNNConvFCHeadExtraNorm)


register_heads()


class ProtocolTrainer(DefaultTrainer):
    """detectron2's trainer with the evaluator of each dataset's kind (COCO or Pascal VOC)."""

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        kind = MetadataCatalog.get(dataset_name).evaluator_type
        if kind == "coco":
            folder = output_folder or os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
            return COCOEvaluator(dataset_name, output_dir=folder)
        if kind == "pascal_voc":
            return PascalVOCDetectionEvaluator(dataset_name)
        raise ValueError(
            f"dataset {dataset_name!r} has evaluator_type {kind!r}: expected 'coco' or 'pascal_voc'"
        )

    @classmethod
    def test(cls, cfg, model, evaluators=None):
        """{dataset: {"bbox": ..., "segm": ...}} for every test dataset, even a single one
        (detectron2's own ``test`` drops the dataset level when there is one)."""
        results = {}
        for name in cfg.DATASETS.TEST:
            loader = cls.build_test_loader(cfg, name)
            results[name] = inference_on_dataset(model, loader, cls.build_evaluator(cfg, name))
        return results


def setup_cfg(config_file: str, opts=(), num_processes: int = 1):
    """The detectron2 config of a ``configs/detectron2/*.yaml`` recipe plus ``KEY VALUE`` opts.

    In one process ``SyncBN`` becomes ``BN`` (same weights and names; PyTorch's SyncBatchNorm
    needs a process group), and the device is the CPU when no GPU is visible.
    """
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"detectron2 config {config_file!r} does not exist")
    cfg = get_cfg()
    cfg.merge_from_file(config_file)
    cfg.merge_from_list(list(opts))
    if num_processes == 1:
        for keys in _NORM_KEYS:
            node = cfg
            for k in keys[:-1]:
                node = node[k]
            if node[keys[-1]] == "SyncBN":
                node[keys[-1]] = "BN"
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("no GPU visible: MODEL.DEVICE cuda -> cpu")
        cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    return cfg


def check_weights(path: str) -> None:
    """Refuse a missing file, and an insloc checkpoint, as detectron2's ``MODEL.WEIGHTS``: for the
    latter detectron2 would match none of its names and silently start from random weights; it
    must be exported first."""
    if path and "://" not in path and not os.path.isfile(path):  # URLs: detectron2's PathManager
        raise FileNotFoundError(f"MODEL.WEIGHTS {path} does not exist")
    if not path.endswith(".pth") or not os.path.isfile(path):
        return
    try:
        weights = read_weight_file(path)
    except ValueError:  # not a file insloc reads (e.g. detectron2's own, with trainer state)
        return
    if weights.task in ("pretraining", "detection"):
        out = os.path.splitext(path)[0] + ".pkl"
        raise ValueError(
            f"MODEL.WEIGHTS {path} is an insloc checkpoint; export it for detectron2 first: "
            f"python tools/convert_checkpoint.py {path} {out} --to detectron2"
        )


def _main(config_file: str, opts, eval_only: bool, resume: bool) -> dict:
    cfg = setup_cfg(config_file, opts, comm.get_world_size())
    check_weights(cfg.MODEL.WEIGHTS)
    args = argparse.Namespace(config_file=config_file, eval_only=eval_only, resume=resume)
    default_setup(cfg, args)
    if eval_only:
        model = ProtocolTrainer.build_model(cfg)
        DetectionCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=resume
        )
        results = ProtocolTrainer.test(cfg, model)
    else:
        trainer = ProtocolTrainer(cfg)
        trainer.resume_or_load(resume=resume)
        trainer.train()
        # detectron2's evaluation hook tests after the last iteration and keeps the results here
        results = trainer._last_eval_results
    if comm.is_main_process():
        path = os.path.join(cfg.OUTPUT_DIR, "results.json")
        atomic_write_text(json.dumps(results, indent=1, default=float), path)
        logger.info(f"results written to {path}")
    return results


def run_detectron2(
    config_file: str,
    opts=(),
    eval_only: bool = False,
    resume: bool = False,
    num_gpus: int = 1,
    num_machines: int = 1,
    machine_rank: int = 0,
    dist_url: str = "auto",
) -> dict:
    """Train (unless ``eval_only``) and evaluate a detectron2 recipe with detectron2 itself.

    Args:
        config_file: a detectron2 yaml, e.g. ``configs/detectron2/coco_mask_rcnn_R50_FPN_1x.yaml``.
        opts: ``KEY VALUE`` overrides (``MODEL.WEIGHTS out.pkl``, ``SOLVER.IMS_PER_BATCH 2``, ...).
        eval_only: evaluate ``MODEL.WEIGHTS`` (or the last checkpoint with ``resume``) only.
        resume: continue from ``OUTPUT_DIR/last_checkpoint``.
        num_gpus: processes per machine detectron2 spawns (one per GPU; 1 on a CPU). Under
            torchrun, leave the defaults: the process group is taken from its environment.
        num_machines, machine_rank, dist_url: detectron2's multi-machine arguments.
    Returns:
        {dataset: {"bbox": {"AP": ..., ...}, "segm": {...}}} when run in this process (one
        process, or under torchrun); None when detectron2 spawned the workers.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and "LOCAL_RANK" in os.environ:  # started by torchrun: join its process group
        if not torch.distributed.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            torch.distributed.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        comm.create_local_process_group(int(os.environ["LOCAL_WORLD_SIZE"]))
        return _main(config_file, list(opts), eval_only, resume)
    if num_gpus * num_machines <= 1:
        return _main(config_file, list(opts), eval_only, resume)
    return launch(
        _main,
        num_gpus,
        num_machines=num_machines,
        machine_rank=machine_rank,
        dist_url=dist_url,
        args=(config_file, list(opts), eval_only, resume),
    )
