"""Dense training on insloc's generic Trainer: which model, which data, how it is evaluated."""

import logging

from insloc.data import build_pretrain_loader, check_some_readable
from insloc.engine.trainer import Trainer
from insloc.utils import comm

from .datasets import build_matching_dataset, build_train_dataset
from .evaluate import evaluate_matching, resolve_protocol
from .model import DenseModel
from .weights import load_weights

__all__ = ["DenseTrainer"]

logger = logging.getLogger("insloc.dense_match")


class DenseTrainer(Trainer):
    """Trains ``DENSE.HEAD`` (and the trunk) on the head's training data.

    Introspection trains on synthetic warps of ``DATASETS.DENSE_TRAIN`` images, AnchorNet on its
    image-level labels. ``MODEL.WEIGHTS`` initialises a run that is not resumed. With
    ``TEST.MATCHING_PAIRS`` > 0, keypoint matching on ``DATASETS.TEST`` (rank 0) runs before
    training, every ``TEST.EVAL_PERIOD`` iterations and at the end.
    """

    def build_model(self, cfg):
        if not cfg.DENSE.HEAD:
            raise ValueError(
                "DENSE.HEAD is '': name a head to train ('Introspection', 'AnchorNet')"
            )
        return DenseModel.from_config(cfg)

    def load_initial_weights(self) -> None:
        if self.cfg.MODEL.WEIGHTS:
            load_weights(self.model, self.cfg.MODEL.WEIGHTS)

    def build_train_loader(self, cfg, start_iter: int):
        self.dataset = build_train_dataset(cfg, self.model.head.TRAIN_DATA)
        classes = getattr(self.dataset, "classes", None)
        if classes is not None and len(classes) != cfg.DENSE.ANCHORNET.NUM_CLASSES:
            raise ValueError(
                f"DATASETS.DENSE_TRAIN {cfg.DATASETS.DENSE_TRAIN!r} has {len(classes)} classes but "
                f"DENSE.ANCHORNET.NUM_CLASSES is {cfg.DENSE.ANCHORNET.NUM_CLASSES}"
            )
        check_some_readable(
            len(self.dataset),
            self.dataset.load_image,
            f"DATASETS.DENSE_TRAIN {cfg.DATASETS.DENSE_TRAIN!r}",
        )
        return build_pretrain_loader(
            cfg, self.dataset, start_iter=start_iter, log_dir=cfg.OUTPUT_DIR
        )

    def find_unused_parameters(self) -> bool:
        # Trunk stages after the last feature layer are built (so weights load by name) but unused.
        return "res5" not in self.cfg.DENSE.FEATURES.LAYERS

    def checkpoint_state(self) -> dict:
        return {"meta_arch": "Dense", "dense_head": self.cfg.DENSE.HEAD}

    def before_train(self) -> None:
        if self.start_iter == 0:
            self._evaluate_and_record(0)

    def evaluate(self, iteration: int) -> dict:
        """PCK on TEST.MATCHING_PAIRS pairs of DATASETS.TEST (rank 0)."""
        cfg = self.cfg
        result = {}
        if cfg.TEST.MATCHING_PAIRS and self.is_main:
            dataset = build_matching_dataset(cfg)
            m = cfg.MATCHING
            result = evaluate_matching(
                self.model,
                dataset,
                resolve_protocol(cfg, dataset.name),
                side=cfg.DENSE.INPUT_SIZE,
                device=self.device,
                method=m.METHOD,
                temperature=m.TEMPERATURE,
                sigma_weighting=m.SIGMA_WEIGHTING,
                max_pairs=cfg.TEST.MATCHING_PAIRS,
            )
            logger.info(
                f"iter {iteration}: {result['dataset']} PCK@0.1 {result['pck@0.1']:.1f} "
                f"({result['norm']}, {result['resize']} pixels, {result['average']}, "
                f"{result['pairs']} pairs)"
            )
        comm.synchronize()
        return result
