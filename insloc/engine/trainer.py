"""The one training loop of insloc: pretraining, detection fine-tuning and dense training use it.

A :class:`Trainer` owns the model, the optimizer and schedule, the data stream and the checkpoints.
Subclasses say what is trained (``build_model``), on what (``build_train_loader``) and how it is
evaluated (``evaluate``); the loop, AMP, DDP, logging, metrics and checkpoint/resume are here.

Resuming restores everything the future of a run depends on (weights and buffers, optimizer,
schedule, iteration, RNG states); the data streams are pure functions of (SEED, iteration), so a
run killed at any moment and resumed ends with the same weights as an uninterrupted one.
"""

import logging
import math
import os
import random
import time
from collections import defaultdict
from contextlib import nullcontext

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from insloc.config.registry import METHODS, backbone_arch_keys
from insloc.transfer.weight_file import load_checkpoint
from insloc.utils import comm
from insloc.utils.device import to_device
from insloc.utils.events import MetricsWriter
from insloc.utils.file_io import atomic_save, atomic_write_text
from insloc.version import __version__

from .checkpoint import checkpoint_name, last_checkpoint, resume_candidates
from .launch import get_local_rank, resolve_device
from .optim import (
    build_gradient_clipper,
    build_lr_scheduler,
    build_optimizer,
    schedule_in_iterations,
)

logger = logging.getLogger("insloc.trainer")


class Trainer:
    """Trains ``build_model(cfg)`` on ``build_train_loader(cfg, start_iter)`` for max_iter steps.

    Contract of the model: ``model(batch) -> dict`` whose "loss*" entries are scalar losses to sum
    and whose other entries are detached scalar metrics. A batch is a collated dict of tensors or a
    list of sample dicts; every tensor inside is moved to the device.

    Args:
        cfg: a frozen config.
        resume: continue from the newest readable checkpoint of OUTPUT_DIR (see
            :func:`~insloc.engine.checkpoint.resume_candidates`) when there is one.

    Subclasses override ``build_model``, ``build_train_loader`` and optionally ``evaluate``,
    ``before_evaluation``, ``load_initial_weights``, ``on_first_batch``,
    ``find_unused_parameters``, ``arch_keys`` and ``outputs``.
    """

    # What evaluation results are called in metrics.jsonl ("<prefix><key>/<key>...").
    eval_metrics_prefix = ""
    # What a run writes in OUTPUT_DIR (glob patterns): a run that is not resumed refuses a folder
    # that holds any of them (insloc.engine.defaults.prepare_output_dir).
    outputs = (
        "config.yaml",
        "log.txt",
        "log.rank*.txt",
        "metrics.jsonl",
        "tensorboard",
        "bad_images.txt",
        "last_checkpoint",
        "model_*.pth",
    )

    @property
    def arch_keys(self) -> tuple:
        """Config keys that fix the weights' shapes or meaning, which a ``--resume`` must agree on:
        the method and backbone names, then the keys their registrations name
        (:mod:`insloc.config.registry`)."""
        model = self.cfg.MODEL
        method = METHODS.get(model.META_ARCHITECTURE)
        return (
            ("MODEL.META_ARCHITECTURE", "MODEL.BACKBONE.NAME")
            + backbone_arch_keys(model.BACKBONE.NAME)
            + (method.arch_keys if method else ())
        )

    def __init__(self, cfg, resume: bool = False):
        self.cfg = cfg
        self.output_dir = cfg.OUTPUT_DIR
        self.device = resolve_device(cfg.MODEL.DEVICE)
        self.is_main = comm.is_main_process()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = not cfg.CUDNN_DETERMINISTIC
            torch.backends.cudnn.deterministic = cfg.CUDNN_DETERMINISTIC

        torch.manual_seed(cfg.SEED)  # the same initial weights on every rank
        random.seed(cfg.SEED)
        model = self.build_model(cfg).to(self.device)
        if cfg.MODEL.CHANNELS_LAST and self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.max_iter = self.resolve_max_iter(cfg)
        self.checkpoint_period = self.resolve_checkpoint_period(cfg)
        self.optimizer = self.build_optimizer(cfg, model)
        self.scheduler = self.build_lr_scheduler(cfg, self.optimizer)
        self.clip_gradients = build_gradient_clipper(cfg)
        amp = cfg.SOLVER.AMP.ENABLED and self.device.type == "cuda"
        self.amp_dtype = getattr(torch, cfg.SOLVER.AMP.DTYPE) if amp else None
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=amp and cfg.SOLVER.AMP.DTYPE == "float16"
        )

        self.start_iter = 0
        self.resumed = bool(resume)
        # Unreadable files the training batches skipped, by name: a file met again (in another
        # epoch, by another worker or process, before and after a resume) is counted once.
        self.bad_files = set()  # over all processes, up to the last gathering
        self._bad_pending = set()  # this process's, since then
        if not (resume and self._resume()):
            self.load_initial_weights()

        self.train_model = self.wrap_distributed(model)
        self.loader = self.build_train_loader(cfg, self.start_iter)
        self.history = {}  # iteration -> evaluation results
        self.iter = self.start_iter  # iterations done, for a message when the run is stopped

    # ------------------------------------------------------------------ what subclasses define
    def build_model(self, cfg) -> nn.Module:
        """The model to train, on the CPU (the trainer moves it)."""
        raise NotImplementedError

    def build_train_loader(self, cfg, start_iter: int):
        """An iterable of this process's batches, starting at iteration ``start_iter``."""
        raise NotImplementedError

    def evaluate(self, iteration: int) -> dict:
        """Evaluate ``self.model`` (every process calls it); results are recorded in history."""
        return {}

    def before_evaluation(self, iteration: int) -> None:
        """What must change the model before an evaluation (precise BN), called before the
        checkpoint of that iteration is saved, so that it holds the weights that are evaluated."""

    def images_per_epoch(self, cfg):
        """Images in one pass over the training data; None where the training has no epochs (then
        SOLVER.MAX_ITER and SOLVER.CHECKPOINT_PERIOD must be given in iterations)."""
        return None

    def resolve_max_iter(self, cfg) -> int:
        """Training length in iterations: SOLVER.MAX_ITER, or SOLVER.EPOCHS of
        ``images_per_epoch`` when it is 0; logged with how it was derived."""
        max_iter, _, why = schedule_in_iterations(cfg, self.images_per_epoch(cfg))
        logger.info(why)
        return max_iter

    def resolve_checkpoint_period(self, cfg) -> int:
        """Iterations between checkpoints: SOLVER.CHECKPOINT_PERIOD, or
        SOLVER.CHECKPOINT_PERIOD_EPOCHS of ``images_per_epoch`` when it is 0."""
        return schedule_in_iterations(cfg, self.images_per_epoch(cfg))[1]

    def build_optimizer(self, cfg, model: nn.Module) -> torch.optim.Optimizer:
        return build_optimizer(cfg, model)

    def build_lr_scheduler(self, cfg, optimizer):
        return build_lr_scheduler(cfg, optimizer, max_iter=self.max_iter)

    def load_initial_weights(self) -> None:
        """Initialise from pretrained weights before training (a run that is not resumed)."""

    def on_first_batch(self, batch) -> None:
        """Called with the first batch a run (or a resumed run) trains on, on every process."""

    def find_unused_parameters(self) -> bool:
        """Whether DDP must look for parameters that get no gradient in a step."""
        return False

    def wrap_distributed(self, model: nn.Module) -> nn.Module:
        if comm.get_world_size() == 1:
            return model
        return DistributedDataParallel(
            model,
            device_ids=[get_local_rank()] if self.device.type == "cuda" else None,
            # Buffers that must agree (MoCo's queues) are identical on every rank by construction;
            # not broadcasting them saves 4 x 32 MB per iteration with the official queues.
            broadcast_buffers=False,
            find_unused_parameters=self.find_unused_parameters(),
        )

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_state(self) -> dict:
        """Plain values a subclass adds to every checkpoint (merged into the saved dict)."""
        return {"meta_arch": self.cfg.MODEL.META_ARCHITECTURE}

    def _resume(self) -> bool:
        """Restore the newest readable checkpoint of OUTPUT_DIR; False when there is none.

        A missing or stale ``last_checkpoint`` and unreadable checkpoints are skipped, with a
        warning naming them; a folder whose checkpoints all fail to load is an error, never a
        silent start from scratch.
        """
        candidates = resume_candidates(self.output_dir)
        if not candidates:
            logger.info(f"--resume: no checkpoint in {self.output_dir}; starting from scratch")
            return False
        marked, errors = last_checkpoint(self.output_dir), []
        for path in candidates:
            try:
                ckpt = load_checkpoint(path)
                break
            except ValueError as e:
                errors.append(str(e))
                logger.warning(f"--resume: skipping an unreadable checkpoint: {e}")
        else:
            raise ValueError(
                f"--resume: none of the {len(candidates)} checkpoints in {self.output_dir} can be "
                f"read ({errors[0]}); nothing was resumed"
            )
        if path != marked:
            logger.warning(
                f"--resume: {os.path.join(self.output_dir, 'last_checkpoint')} is missing or names "
                f"a file that is gone or unreadable; resuming from the newest readable checkpoint, "
                f"{path}"
            )
        _check_same_architecture(ckpt, self.cfg, path, self.arch_keys)
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as e:
            raise ValueError(f"--resume: {path} does not fit this model: {str(e)[:500]}") from None
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if "scaler" in ckpt:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.start_iter = int(ckpt["iteration"])
        self.bad_files = set(ckpt.get("bad_files", ()))
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        random.setstate(_to_tuple(rng["python"]))
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        logger.info(f"resumed from {path}: {self.start_iter} iterations done")
        return True

    @property
    def bad_images_path(self) -> str:
        return os.path.join(self.output_dir, "bad_images.txt")

    def _gather_bad_images(self) -> int:
        """Merge every process's skipped files since the last call into ``bad_files`` (a
        collective: done when logging and checkpointing, not every iteration); rank 0 rewrites
        OUTPUT_DIR/bad_images.txt (one name per line) when the set grew.

        Returns:
            the number of distinct files skipped so far.
        """
        known = len(self.bad_files)
        for names in comm.all_gather_object(sorted(self._bad_pending)):
            self.bad_files.update(names)
        self._bad_pending = set()
        if len(self.bad_files) > known:
            self._write_bad_images()
        return len(self.bad_files)

    def _write_bad_images(self) -> None:
        if self.is_main:
            text = "".join(f"{name}\n" for name in sorted(self.bad_files))
            atomic_write_text(text, self.bad_images_path)

    def save_checkpoint(self, iterations_done: int, name: str) -> str:
        """Write the full training state to ``OUTPUT_DIR/name`` (rank 0) and point to it."""
        path = os.path.join(self.output_dir, name)
        self._gather_bad_images()
        if self.is_main:
            rng = {"torch": torch.get_rng_state(), "python": random.getstate()}
            if self.device.type == "cuda":
                rng["cuda"] = torch.cuda.get_rng_state(self.device)
            state = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "iteration": iterations_done,
                "rng": rng,
                "bad_files": sorted(self.bad_files),  # a list of str: weights_only-safe
                "config": self.cfg.dump(),
                "insloc_version": __version__,
                **self.checkpoint_state(),
            }
            atomic_save(state, path)
            atomic_write_text(name, os.path.join(self.output_dir, "last_checkpoint"))
        comm.synchronize()
        return path

    # ------------------------------------------------------------------ training
    def _isolated(self, step, iteration: int):
        """``step(iteration)`` without moving the training streams: evaluation may draw random
        numbers (precise BN runs training-mode forwards), and a run resumed after it must not
        diverge. The model's training mode is restored too."""
        was_training = self.model.training
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            state = random.getstate()
            try:
                return step(iteration)
            finally:
                random.setstate(state)
                self.model.train(was_training)

    def _evaluate_and_record(self, iteration: int) -> dict:
        result = self._isolated(self.evaluate, iteration)
        if result:
            self.history[iteration] = result
        return result

    def before_train(self) -> None:
        """Called once before the first step (evaluates the initial model when asked to)."""

    def train(self) -> dict:
        """Run the remaining iterations; returns {iteration: evaluation results}."""
        resumed_at = self.start_iter if self.resumed else None
        writer = MetricsWriter(self.output_dir, resumed_at=resumed_at) if self.is_main else None
        self.before_train()
        logger.info(f"training from iteration {self.start_iter} to {self.max_iter}")
        bar = tqdm(
            total=self.max_iter,
            initial=self.start_iter,
            disable=not self.is_main,
            unit="it",
            dynamic_ncols=True,
            mininterval=1.0 if os.isatty(2) else 30.0,
        )
        try:
            self._run_iterations(writer, bar)
        finally:  # also when stopped (Ctrl-C, an error): the bar's last line before any message
            bar.close()
            if writer is not None:
                writer.close()
        if self.start_iter == self.max_iter:
            logger.info("nothing to do: the run had already reached its last iteration")
            self._evaluate_and_record(self.max_iter)
        self._report_bad_images()
        return self.history

    def _run_iterations(self, writer, bar) -> None:
        cfg = self.cfg
        max_iter = self.max_iter
        self.train_model.train()
        data_iter = iter(self.loader)
        window = defaultdict(float)
        window_len = 0
        t_prev = time.perf_counter()
        for it in range(self.start_iter, max_iter):
            batch = next(data_iter)
            t_data = time.perf_counter() - t_prev
            if it == self.start_iter:
                self.on_first_batch(batch)
            self._bad_pending.update(_bad_files(batch))
            metrics = self.run_step(batch, it)
            t_iter = time.perf_counter() - t_prev
            t_prev = time.perf_counter()

            for k, v in metrics.items():
                window[k] += v
            window["data_time"] += t_data
            window["iter_time"] += t_iter
            window_len += 1
            bar.update(1)
            done = it + 1
            self.iter = done
            evaluate = done == max_iter or (
                cfg.TEST.EVAL_PERIOD and done % cfg.TEST.EVAL_PERIOD == 0
            )
            stats = None
            if done % cfg.LOG_PERIOD == 0 or evaluate:
                stats = comm.all_reduce_mean({k: v / window_len for k, v in window.items()})
                stats["lr"] = self.optimizer.param_groups[0]["lr"]
                stats["images_per_sec"] = cfg.SOLVER.IMS_PER_BATCH / stats["iter_time"]
                stats["num_bad_images"] = self._gather_bad_images()
                bar.set_postfix(loss=f"{stats['total_loss']:.3f}", refresh=False)
                window.clear()
                window_len = 0
            if writer is not None and stats is not None and not evaluate:
                writer.write(done, stats)
            # Precise BN (detectron2 runs it before its checkpointer) comes first, so that the
            # checkpoint holds the weights that are evaluated; the checkpoint comes before the
            # evaluation, so that an evaluation that fails cannot lose the trained weights.
            if evaluate:
                self._isolated(self.before_evaluation, done)
            if done == max_iter:
                self.save_checkpoint(done, "model_final.pth")
            elif done % self.checkpoint_period == 0:
                self.save_checkpoint(done, checkpoint_name(it))
            if evaluate:
                try:
                    result = self._evaluate_and_record(done)
                except BaseException:
                    if writer is not None:  # the iteration was trained: it keeps its row
                        writer.write(done, stats)
                    raise
                if writer is not None:  # the evaluation's numbers in the row of their iteration
                    writer.write(
                        done, {**stats, **flatten_results(result, self.eval_metrics_prefix)}
                    )

    def _report_bad_images(self) -> None:
        """The run's last word on its data: how many distinct files were skipped, and where."""
        n = len(self.bad_files)
        if not self.is_main:
            return
        if n:
            self._write_bad_images()  # again: a resumed run that met nothing new has it too
            logger.warning(
                f"skipped {n} unreadable image file{'s' if n > 1 else ''} (each replaced by "
                f"another image when met); the list is in {self.bad_images_path}"
            )
        else:
            logger.info("skipped images: none (every image file met was readable)")

    def run_step(self, batch, it: int) -> dict:
        """One optimizer step; returns the step's losses and metrics as floats."""
        batch = to_device(batch, self.device)
        autocast = torch.autocast("cuda", dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        with autocast:
            outputs = self.train_model(batch)
        loss = sum(v for k, v in outputs.items() if k.startswith("loss"))
        # One device-to-host copy per iteration for all metrics (each .item() would be a sync).
        names = [*outputs, "total_loss"]
        values = torch.stack([v.detach().float() for v in (*outputs.values(), loss)]).tolist()
        metrics = dict(zip(names, values))
        if not math.isfinite(metrics["total_loss"]):
            losses = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k.startswith("loss"))
            raise FloatingPointError(
                f"loss became non-finite at iteration {it} ({losses}); lower SOLVER.BASE_LR or "
                f"check the data; the last good checkpoint is in {self.output_dir}"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.clip_gradients is not None:
            self.scaler.unscale_(self.optimizer)  # clip the true gradients (a no-op without AMP)
            self.clip_gradients([p for g in self.optimizer.param_groups for p in g["params"]])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return metrics


def flatten_results(results: dict, prefix: str = "") -> dict:
    """Nested evaluation results as one level of "a/b/c" keys, as detectron2 writes them to its
    metrics (``{"synthetic_test": {"bbox": {"AP": 2.0}}}`` -> ``{"synthetic_test/bbox/AP": 2.0}``);
    lists (settings such as a protocol's thresholds) are left out.
    """
    flat = {}
    for key, value in results.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_results(value, name + "/"))
        elif not isinstance(value, (list, tuple)):
            flat[name] = value
    return flat


def _bad_files(batch) -> list:
    """Names of the unreadable files a batch's samples skipped: "bad_files" of a collated dict
    (one flat list) or of each sample dict of a list."""
    if isinstance(batch, dict):
        return list(batch.get("bad_files", ()))
    if isinstance(batch, (list, tuple)):
        return [n for s in batch if isinstance(s, dict) for n in s.get("bad_files", ())]
    return []


def _check_same_architecture(ckpt: dict, cfg, path: str, keys) -> None:
    from fvcore.common.config import CfgNode

    saved = CfgNode.load_cfg(ckpt["config"])
    for key in keys:
        a, b = saved, cfg
        try:
            for part in key.split("."):
                a, b = a[part], b[part]
        except KeyError:
            continue  # a key this checkpoint's version did not have
        if _plain(a) != _plain(b):
            raise ValueError(
                f"--resume: {path} was trained with {key} = {a!r}, this config has {b!r}; "
                "use the checkpoint's config or another OUTPUT_DIR"
            )


def _plain(x):
    return list(x) if isinstance(x, (list, tuple)) else x


def _to_tuple(x):
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x
