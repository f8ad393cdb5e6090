"""The pretraining loop: one object owns the model, optimizer, data stream and checkpoints.

Resuming restores everything the future of a run depends on (weights of both encoders, queues,
optimizer, schedule, iteration, RNG states); the data stream is a pure function of
(SEED, iteration), so a run killed at any moment and resumed ends with the same weights as an
uninterrupted one.
"""

import logging
import math
import os
import random
import time
from collections import defaultdict
from contextlib import nullcontext

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

import insloc
from insloc.data import build_pretrain_dataset, build_pretrain_loader
from insloc.evaluation import build_heldout_batch, instance_discrimination_accuracy
from insloc.modeling import build_model
from insloc.utils import comm
from insloc.utils.events import MetricsWriter
from insloc.utils.visualize import save_composite_grid

from .checkpoint import (
    atomic_save,
    atomic_write_text,
    checkpoint_name,
    last_checkpoint,
    load_checkpoint,
)
from .launch import get_local_rank, resolve_device
from .optim import build_lr_scheduler, build_optimizer

logger = logging.getLogger("insloc.trainer")

# Fields of the checkpoint's config that fix the shapes of the weights: a --resume must agree.
_ARCH_KEYS = (
    "MODEL.META_ARCHITECTURE",
    "MODEL.BACKBONE.NAME",
    "MODEL.RESNETS.DEPTH",
    "MODEL.RESNETS.WIDTH",
    "MODEL.ROI_BOX_HEAD.IN_FEATURES",
    "MODEL.MOCO.DIM",
    "MODEL.MOCO.QUEUE_SIZE",
)


class PretrainTrainer:
    """Pretrains ``build_model(cfg)`` on ``DATASETS.PRETRAIN`` for ``SOLVER.MAX_ITER`` iterations.

    Args:
        cfg: a frozen config.
        resume: continue from ``OUTPUT_DIR/last_checkpoint`` when it exists.
    """

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
        model = build_model(cfg).to(self.device)
        if cfg.MODEL.CHANNELS_LAST and self.device.type == "cuda":
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = build_optimizer(cfg, model)
        self.scheduler = build_lr_scheduler(cfg, self.optimizer)
        amp = cfg.SOLVER.AMP.ENABLED and self.device.type == "cuda"
        self.amp_dtype = getattr(torch, cfg.SOLVER.AMP.DTYPE) if amp else None
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=amp and cfg.SOLVER.AMP.DTYPE == "float16"
        )

        self.start_iter = 0
        self.num_bad_images = 0  # over all processes, up to the last reduction
        self._bad_pending = 0  # this process's, since then
        if resume:
            self._resume()

        self.train_model = model
        if comm.get_world_size() > 1:
            self.train_model = DistributedDataParallel(
                model,
                device_ids=[get_local_rank()] if self.device.type == "cuda" else None,
                # Queues are identical on every rank by construction (all-gathered keys); not
                # broadcasting buffers saves 4 x 32 MB per iteration with the official queues.
                broadcast_buffers=False,
                find_unused_parameters=_has_unused_levels(cfg),
            )
        self.dataset = build_pretrain_dataset(cfg)
        self.loader = build_pretrain_loader(
            cfg, self.dataset, start_iter=self.start_iter, log_dir=self.output_dir
        )
        self.heldout = None
        if cfg.TEST.INSTANCE_DISC_SAMPLES and self.is_main:
            self.heldout = build_heldout_batch(cfg, cfg.TEST.INSTANCE_DISC_SAMPLES)
        self.history = {}  # iteration -> held-out instance discrimination accuracy

    # ------------------------------------------------------------------ checkpoints
    def _resume(self) -> None:
        path = last_checkpoint(self.output_dir)
        if path is None:
            logger.info(f"--resume: no checkpoint in {self.output_dir}; starting from scratch")
            return
        ckpt = load_checkpoint(path)
        _check_same_architecture(ckpt, self.cfg, path)
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as e:
            raise ValueError(f"--resume: {path} does not fit this model: {str(e)[:500]}") from None
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if "scaler" in ckpt:
            self.scaler.load_state_dict(ckpt["scaler"])
        self.start_iter = int(ckpt["iteration"])
        self.num_bad_images = int(ckpt.get("num_bad_images", 0))
        rng = ckpt["rng"]
        torch.set_rng_state(rng["torch"])
        random.setstate(_to_tuple(rng["python"]))
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        logger.info(f"resumed from {path}: {self.start_iter} iterations done")

    def _reduce_bad_images(self) -> int:
        """Add every process's skipped-file count since the last call to the total (a collective:
        done when logging and checkpointing, not every iteration)."""
        self.num_bad_images += int(comm.all_reduce_sum({"n": self._bad_pending})["n"])
        self._bad_pending = 0
        return self.num_bad_images

    def save_checkpoint(self, iterations_done: int, name: str) -> str:
        """Write the full training state to ``OUTPUT_DIR/name`` (rank 0) and point to it."""
        path = os.path.join(self.output_dir, name)
        self._reduce_bad_images()
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
                "num_bad_images": self.num_bad_images,
                "config": self.cfg.dump(),
                "meta_arch": self.cfg.MODEL.META_ARCHITECTURE,
                "insloc_version": insloc.__version__,
            }
            atomic_save(state, path)
            atomic_write_text(name, os.path.join(self.output_dir, "last_checkpoint"))
        comm.synchronize()
        return path

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, iteration: int) -> dict:
        """Held-out instance discrimination accuracy of the query encoder (rank 0)."""
        result = {}
        if self.heldout is not None:
            result = instance_discrimination_accuracy(self.model, self.heldout, self.device)
            self.history[iteration] = result
            logger.info(
                f"iter {iteration}: held-out instance discrimination "
                + ", ".join(f"{k} {100 * v:.1f}%" for k, v in result.items())
            )
        comm.synchronize()
        return result

    # ------------------------------------------------------------------ training
    def train(self) -> dict:
        cfg = self.cfg
        max_iter = cfg.SOLVER.MAX_ITER
        writer = MetricsWriter(self.output_dir) if self.is_main else None
        if self.start_iter == 0 and self.heldout is not None:
            self.evaluate(0)
        logger.info(f"training from iteration {self.start_iter} to {max_iter}")

        self.train_model.train()
        data_iter = iter(self.loader)
        window = defaultdict(float)
        window_len = 0
        bar = tqdm(
            total=max_iter,
            initial=self.start_iter,
            disable=not self.is_main,
            unit="it",
            dynamic_ncols=True,
            mininterval=1.0 if os.isatty(2) else 30.0,
        )
        t_prev = time.perf_counter()
        for it in range(self.start_iter, max_iter):
            batch = next(data_iter)
            t_data = time.perf_counter() - t_prev
            if it == self.start_iter and self.is_main and cfg.VIS_SAMPLES:
                save_composite_grid(
                    batch, os.path.join(self.output_dir, "composites.png"), cfg.VIS_SAMPLES
                )
            self._bad_pending += int(batch["num_bad"].sum())
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
            if done % cfg.LOG_PERIOD == 0 or done == max_iter:
                stats = comm.all_reduce_mean({k: v / window_len for k, v in window.items()})
                stats["lr"] = self.optimizer.param_groups[0]["lr"]
                stats["images_per_sec"] = cfg.SOLVER.IMS_PER_BATCH / stats["iter_time"]
                stats["num_bad_images"] = self._reduce_bad_images()
                if writer is not None:
                    writer.write(done, stats)
                bar.set_postfix(loss=f"{stats['total_loss']:.3f}", refresh=False)
                window.clear()
                window_len = 0
            if done == max_iter:
                self.save_checkpoint(done, "model_final.pth")
            elif done % cfg.SOLVER.CHECKPOINT_PERIOD == 0:
                self.save_checkpoint(done, checkpoint_name(it))
            if cfg.TEST.EVAL_PERIOD and done % cfg.TEST.EVAL_PERIOD == 0 and done != max_iter:
                self.evaluate(done)  # restores training mode
        bar.close()
        if self.start_iter == max_iter:
            logger.info("nothing to do: the run had already reached SOLVER.MAX_ITER")
        if self.heldout is not None:
            self.evaluate(max_iter)
        if writer is not None:
            writer.close()
        return self.history

    def run_step(self, batch: dict, it: int) -> dict:
        """One SGD step; returns the step's losses and metrics as floats."""
        batch = {
            k: v.to(self.device, non_blocking=True)
            for k, v in batch.items()
            if isinstance(v, torch.Tensor)
        }
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
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return metrics


def _has_unused_levels(cfg) -> bool:
    """FPN outputs that no box is pooled from leave parameters without gradient under DDP."""
    if cfg.MODEL.BACKBONE.NAME != "resnet_fpn":
        return False
    return set(cfg.MODEL.ROI_BOX_HEAD.IN_FEATURES) != {"p2", "p3", "p4", "p5"}


def _check_same_architecture(ckpt: dict, cfg, path: str) -> None:
    from fvcore.common.config import CfgNode

    saved = CfgNode.load_cfg(ckpt["config"])
    for key in _ARCH_KEYS:
        a, b = saved, cfg
        for part in key.split("."):
            a, b = a[part], b[part]
        if _plain(a) != _plain(b):
            raise ValueError(
                f"--resume: {path} was trained with {key} = {a!r}, this config has {b!r}; "
                "use the checkpoint's config or another OUTPUT_DIR"
            )


def _plain(x):
    return list(x) if isinstance(x, (list, tuple)) else x


def _to_tuple(x):
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x
