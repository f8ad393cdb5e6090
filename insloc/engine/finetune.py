"""Detection fine-tuning on the generic loop: a detector, labelled data, COCO / VOC evaluation."""

import itertools
import logging
import os
import warnings

from torch import nn

from insloc.data.detection import (
    build_detection_test_loader,
    build_detection_train_loader,
    check_test_set,
)
from insloc.evaluation import (
    build_evaluator,
    inference_dir,
    inference_on_dataset,
    print_results_table,
    save_results_json,
)
from insloc.modeling import build_model
from insloc.modeling.norm import convert_sync_bn_if_distributed
from insloc.transfer.weights import load_detection_weights
from insloc.utils import comm
from insloc.utils.device import to_device

from .trainer import Trainer

with warnings.catch_warnings():  # fvcore.nn scripts a loss at import (deprecated in torch 2.9+)
    warnings.filterwarnings("ignore", message=".*torch.jit.script", category=FutureWarning)
    from fvcore.nn.precise_bn import get_bn_modules, update_bn_stats

logger = logging.getLogger("insloc.trainer")


class DetectionTrainer(Trainer):
    """Fine-tunes ``MODEL.META_ARCHITECTURE`` "GeneralizedRCNN" on ``DATASETS.TRAIN`` and evaluates
    it on every ``DATASETS.TEST`` set every ``TEST.EVAL_PERIOD`` iterations and at the end.

    ``MODEL.WEIGHTS`` initialises the model when the run is not resumed. Layers configured as
    SyncBN are built as BatchNorm and become SyncBatchNorm only under DDP on CUDA, so one GPU or a
    CPU never fails on them. ``TEST.PRECISE_BN`` recomputes BN statistics on training batches before
    each evaluation (detectron2's PreciseBN hook). Before training, the training set's classes are
    checked against ``MODEL.ROI_HEADS.NUM_CLASSES`` and every test set's files on disk
    (:func:`~insloc.data.detection.check_test_set`): bad input stops the run before it trains.
    """

    outputs = Trainer.outputs + ("results.json", "inference")

    def __init__(self, cfg, resume: bool = False):
        self._test_loaders = {}  # DATASETS.TEST name -> (loader, metadata)
        super().__init__(cfg, resume)
        for name in cfg.DATASETS.TEST:
            loader, metadata = self.test_loader(name)
            check_test_set(name, loader.dataset.records, metadata)
            classes = len(metadata["thing_classes"])
            if classes < cfg.MODEL.ROI_HEADS.NUM_CLASSES:
                raise ValueError(
                    f"test set {name} has {classes} categories, fewer than "
                    f"MODEL.ROI_HEADS.NUM_CLASSES = {cfg.MODEL.ROI_HEADS.NUM_CLASSES}: detections "
                    f"of the others could not be scored; expected MODEL.ROI_HEADS.NUM_CLASSES "
                    f"{classes}"
                )

    def build_model(self, cfg) -> nn.Module:
        # SyncBN layers become nn.SyncBatchNorm only under DDP on CUDA (PyTorch has no CPU
        # implementation); on the device already, before the optimizer takes the parameters.
        return convert_sync_bn_if_distributed(build_model(cfg).to(self.device))

    def load_initial_weights(self) -> None:
        if self.cfg.MODEL.WEIGHTS:
            load_detection_weights(self.model, self.cfg.MODEL.WEIGHTS, logger)
        else:
            logger.info("MODEL.WEIGHTS is empty: training from random initialisation")

    def build_train_loader(self, cfg, start_iter: int):
        loader = build_detection_train_loader(cfg, start_iter=start_iter, log_dir=cfg.OUTPUT_DIR)
        self.train_dataset = loader.dataset
        classes = loader.dataset.metadata["thing_classes"]
        num_classes = cfg.MODEL.ROI_HEADS.NUM_CLASSES
        if len(classes) > num_classes:
            raise ValueError(
                f"MODEL.ROI_HEADS.NUM_CLASSES = {num_classes}, but DATASETS.TRAIN "
                f"{cfg.DATASETS.TRAIN[0]} has {len(classes)} categories; expected "
                f"MODEL.ROI_HEADS.NUM_CLASSES {len(classes)}"
            )
        return loader

    def find_unused_parameters(self) -> bool:
        # Res5ROIHeads' mask branch gets no gradient in a step whose images hold no foreground.
        return bool(self.cfg.MODEL.MASK_ON)

    def before_evaluation(self, iteration: int) -> None:
        cfg = self.cfg
        if cfg.DATASETS.TEST and cfg.TEST.PRECISE_BN.ENABLED and get_bn_modules(self.model):
            self.precise_bn(iteration)

    def evaluate(self, iteration: int) -> dict:
        """Every DATASETS.TEST set; returns {dataset: {"bbox": ..., "segm": ...}} on rank 0 ({}
        elsewhere) and writes OUTPUT_DIR/results.json."""
        cfg = self.cfg
        if not cfg.DATASETS.TEST:
            return {}
        results = {}
        for name in cfg.DATASETS.TEST:
            loader, metadata = self.test_loader(name)
            folder = inference_dir(cfg, name)
            logger.info(f"{name}: raw detections in {folder}")
            evaluator = build_evaluator(cfg, name, metadata, folder, records=loader.dataset.records)
            result = inference_on_dataset(self.model, loader, evaluator, self.device)
            if self.is_main:
                results[name] = result
                print_results_table(name, result, logger)
        if self.is_main:
            save_results_json(results, os.path.join(self.output_dir, "results.json"))
            logger.info(f"iter {iteration}: results in {self.output_dir}/results.json")
        comm.synchronize()
        return results

    def test_loader(self, name: str):
        """(loader, metadata) of test set ``name``, built once a run (when it starts, to check the
        set's files): its annotations are not read again at every evaluation."""
        if name not in self._test_loaders:
            self._test_loaders[name] = build_detection_test_loader(self.cfg, name)
        return self._test_loaders[name]

    def precise_bn(self, iteration: int) -> None:
        """Replace BN running statistics by their average over TEST.PRECISE_BN.NUM_ITER training
        batches of the current weights (the batches training would see from ``iteration`` on, from
        a loader of their own so the training stream is untouched)."""
        num_iter = self.cfg.TEST.PRECISE_BN.NUM_ITER
        loader = build_detection_train_loader(
            self.cfg, start_iter=iteration, dataset=self.train_dataset
        )
        batches = (to_device(b, self.device) for b in itertools.islice(loader, num_iter))
        self.model.train()
        update_bn_stats(self.model, batches, num_iter)
        logger.info(f"precise BN: statistics recomputed on {num_iter} training batches")


def evaluate_only(cfg, resume: bool) -> dict:
    """``--eval-only``: load MODEL.WEIGHTS (or, with ``resume``, the run's last checkpoint) and
    evaluate on DATASETS.TEST without training."""
    trainer = EvalOnlyTrainer(cfg, resume=resume)
    return trainer.train().get(trainer.start_iter, {})


class EvalOnlyTrainer(DetectionTrainer):
    """A DetectionTrainer whose ``train`` evaluates once (``--eval-only``); no training loader."""

    outputs = ("config.yaml", "log.txt", "log.rank*.txt", "results.json", "inference")

    def build_train_loader(self, cfg, start_iter: int):
        return None

    def train(self) -> dict:
        """Evaluate the weights as they are (BN statistics the checkpoint's: no precise BN);
        returns ``history``, {iteration: results} on rank 0."""
        logger.info("--eval-only: BN statistics are the checkpoint's (no precise BN)")
        self._evaluate_and_record(self.start_iter)
        return self.history
