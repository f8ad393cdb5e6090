"""Pretraining on the generic loop: a pretext method, its unlabelled data and its held-out check."""

import logging
import os

from insloc.data import build_pretrain_dataset, build_pretrain_loader, check_some_readable
from insloc.evaluation import build_heldout_batch, instance_discrimination_accuracy
from insloc.modeling import build_model
from insloc.utils import comm
from insloc.utils.visualize import save_composite_grid

from .trainer import Trainer

logger = logging.getLogger("insloc.trainer")


class PretrainTrainer(Trainer):
    """Pretrains ``MODEL.META_ARCHITECTURE`` on ``DATASETS.PRETRAIN`` (see :class:`Trainer`).

    Held-out instance discrimination (``TEST.INSTANCE_DISC_SAMPLES``) runs on rank 0 before
    training, every ``TEST.EVAL_PERIOD`` iterations and at the end.
    """

    eval_metrics_prefix = "instance_discrimination/"
    outputs = Trainer.outputs + ("composites.png",)

    def __init__(self, cfg, resume: bool = False):
        self.heldout = None
        self.dataset = None
        if cfg.TEST.INSTANCE_DISC_SAMPLES and comm.is_main_process():
            self.heldout = build_heldout_batch(cfg, cfg.TEST.INSTANCE_DISC_SAMPLES)
        super().__init__(cfg, resume)

    def build_model(self, cfg):
        return build_model(cfg)

    def images_per_epoch(self, cfg) -> int:
        """The size of the image source: recipes state their length in epochs of it."""
        if self.dataset is None:
            self.dataset = build_pretrain_dataset(cfg)
        return len(self.dataset)

    def build_train_loader(self, cfg, start_iter: int):
        if self.dataset is None:
            self.dataset = build_pretrain_dataset(cfg)
        source = self.dataset.source
        check_some_readable(
            len(source), lambda i: source.load(i, 8), f"DATASETS.PRETRAIN {cfg.DATASETS.PRETRAIN!r}"
        )
        return build_pretrain_loader(
            cfg, self.dataset, start_iter=start_iter, log_dir=cfg.OUTPUT_DIR
        )

    def find_unused_parameters(self) -> bool:
        """FPN outputs that no box is pooled from leave parameters without gradient under DDP."""
        cfg = self.cfg
        if cfg.MODEL.BACKBONE.NAME != "resnet_fpn":
            return False
        return set(cfg.MODEL.ROI_BOX_HEAD.IN_FEATURES) != {"p2", "p3", "p4", "p5"}

    def before_train(self) -> None:
        if self.start_iter == 0 and self.heldout is not None:
            self._evaluate_and_record(0)

    def on_first_batch(self, batch) -> None:
        if self.is_main and self.cfg.VIS_SAMPLES:
            path = os.path.join(self.output_dir, "composites.png")
            save_composite_grid(batch, path, self.cfg.VIS_SAMPLES)

    def evaluate(self, iteration: int) -> dict:
        """Held-out instance discrimination accuracy of the query encoder (rank 0)."""
        result = {}
        if self.heldout is not None:
            result = instance_discrimination_accuracy(self.model, self.heldout, self.device)
            logger.info(
                f"iter {iteration}: held-out instance discrimination "
                + ", ".join(f"{k} {100 * v:.1f}%" for k, v in result.items())
            )
        comm.synchronize()
        return result
