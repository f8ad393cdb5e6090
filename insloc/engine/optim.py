"""SGD, gradient clipping, the per-iteration learning-rate schedules (warm-up, then cosine,
constant or steps), and the training length in iterations from a recipe's epochs."""

import bisect
import math

import torch
from torch.optim.lr_scheduler import LRScheduler


def scaled_lr(cfg) -> float:
    """The linear scaling rule: lr = BASE_LR * IMS_PER_BATCH / REFERENCE_BATCH_SIZE."""
    ref = cfg.SOLVER.REFERENCE_BATCH_SIZE
    return cfg.SOLVER.BASE_LR * (cfg.SOLVER.IMS_PER_BATCH / ref if ref else 1.0)


_NORM_TYPES = (
    torch.nn.modules.batchnorm._BatchNorm,
    torch.nn.GroupNorm,
    torch.nn.LayerNorm,
    torch.nn.LocalResponseNorm,
)


def build_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD over the trainable parameters.

    Weight decay is SOLVER.WEIGHT_DECAY on every parameter, except those of normalisation layers,
    which get SOLVER.WEIGHT_DECAY_NORM when it is set (>= 0; detectron2's default for fine-tuning is
    0.0) and WEIGHT_DECAY otherwise (-1, MoCo's pretraining: decay on all parameters).
    """
    norm_decay = cfg.SOLVER.WEIGHT_DECAY_NORM
    if norm_decay < 0:
        params = [p for p in model.parameters() if p.requires_grad]
    else:
        norm_params, other, seen = [], [], set()
        for module in model.modules():
            for p in module.parameters(recurse=False):
                if not p.requires_grad or id(p) in seen:
                    continue
                seen.add(id(p))
                (norm_params if isinstance(module, _NORM_TYPES) else other).append(p)
        params = [{"params": other}, {"params": norm_params, "weight_decay": norm_decay}]
    return torch.optim.SGD(
        params,
        lr=scaled_lr(cfg),
        momentum=cfg.SOLVER.MOMENTUM,
        nesterov=cfg.SOLVER.NESTEROV,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
    )


def build_gradient_clipper(cfg):
    """``SOLVER.CLIP_GRADIENTS`` as a function of the parameters, applied to their (unscaled)
    gradients before each step; None when disabled."""
    c = cfg.SOLVER.CLIP_GRADIENTS
    if not c.ENABLED:
        return None
    if c.CLIP_TYPE == "value":
        return lambda params: torch.nn.utils.clip_grad_value_(params, c.CLIP_VALUE)
    return lambda params: torch.nn.utils.clip_grad_norm_(params, c.CLIP_VALUE, c.NORM_TYPE)


class WarmupLR(LRScheduler):
    """Linear warm-up from ``warmup_factor``, then a cosine decay to 0, a constant lr, or a decay by
    ``gamma`` at each of ``steps`` (detectron2's WarmupMultiStepLR).

    Stepped once per iteration; its state is plain numbers, so checkpoints stay weights-only.

    Args:
        optimizer: the optimizer whose groups' lr it sets.
        max_iter: the last iteration (the cosine reaches 0 there).
        cosine: cosine decay (ignored when ``steps`` is given).
        steps: iterations at which the lr is multiplied by ``gamma``; empty for no steps.
        gamma: the factor of each step.
        warmup_iters, warmup_factor: linear warm-up length and starting factor.
    """

    def __init__(
        self,
        optimizer,
        *,
        max_iter,
        cosine=True,
        steps=(),
        gamma=0.1,
        warmup_iters=0,
        warmup_factor=0.001,
    ):
        if list(steps) != sorted(steps):
            raise ValueError(f"SOLVER.STEPS = {list(steps)}: expected increasing iterations")
        self.max_iter = max_iter
        self.cosine = cosine
        self.steps = tuple(steps)
        self.gamma = gamma
        self.warmup_iters = warmup_iters
        self.warmup_factor = warmup_factor
        super().__init__(optimizer)

    def factor(self, it: int) -> float:
        if self.steps:
            f = self.gamma ** bisect.bisect_right(self.steps, it)
        elif self.cosine:
            f = 0.5 * (1.0 + math.cos(math.pi * it / self.max_iter))
        else:
            f = 1.0
        if it < self.warmup_iters:
            alpha = it / self.warmup_iters
            f *= self.warmup_factor * (1 - alpha) + alpha
        return f

    def get_lr(self):
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]


def iterations_per_epoch(num_images: int, batch: int) -> int:
    """Iterations of one epoch: the full global batches of a pass (the sampler drops the tail)."""
    if num_images < batch:
        raise ValueError(
            f"an epoch of {num_images} images is shorter than one batch of SOLVER.IMS_PER_BATCH "
            f"({batch}); lower SOLVER.IMS_PER_BATCH"
        )
    return num_images // batch


def schedule_in_iterations(cfg, num_images=None) -> tuple:
    """SOLVER.MAX_ITER and SOLVER.CHECKPOINT_PERIOD in iterations, each derived from its epochs
    key (SOLVER.EPOCHS, SOLVER.CHECKPOINT_PERIOD_EPOCHS) when it is 0: a recipe then keeps its
    epochs whatever the batch.

    Args:
        cfg: the config.
        num_images: images per epoch; None where the trainer has no epochs.
    Returns:
        (max_iter, checkpoint_period, a log line saying how many iterations and why).
    """
    s = cfg.SOLVER
    batch = s.IMS_PER_BATCH
    per_epoch = None if num_images is None else iterations_per_epoch(num_images, batch)
    needs_epochs = s.MAX_ITER == 0 or s.CHECKPOINT_PERIOD == 0
    if needs_epochs and per_epoch is None:
        key = "SOLVER.MAX_ITER" if s.MAX_ITER == 0 else "SOLVER.CHECKPOINT_PERIOD"
        raise ValueError(f"{key} is 0 but this training has no epochs to count; set {key}")
    if per_epoch is not None:
        epoch_size = f"{num_images:,} images // SOLVER.IMS_PER_BATCH {batch}"
    if s.MAX_ITER > 0:
        max_iter = s.MAX_ITER
        why = f"SOLVER.MAX_ITER {max_iter:,} iterations, given"
        if per_epoch is not None:
            why += (
                f" ({max_iter / per_epoch:.4g} epochs of {per_epoch:,} iterations = {epoch_size}; "
                "SOLVER.EPOCHS unused)"
            )
    else:
        max_iter = s.EPOCHS * per_epoch
        why = (
            f"SOLVER.EPOCHS {s.EPOCHS} x {per_epoch:,} iterations per epoch ({epoch_size}) = "
            f"{max_iter:,} iterations"
        )
    if s.CHECKPOINT_PERIOD > 0:
        period = s.CHECKPOINT_PERIOD
        why += f"; a checkpoint every {period:,} iterations (SOLVER.CHECKPOINT_PERIOD)"
    else:
        period = s.CHECKPOINT_PERIOD_EPOCHS * per_epoch
        why += (
            f"; a checkpoint every {s.CHECKPOINT_PERIOD_EPOCHS} epochs = {period:,} iterations "
            "(SOLVER.CHECKPOINT_PERIOD_EPOCHS)"
        )
    return max_iter, period, "training length: " + why


def build_lr_scheduler(cfg, optimizer, max_iter: int = None) -> WarmupLR:
    """The schedule of SOLVER.LR_SCHEDULER_NAME over ``max_iter`` (default SOLVER.MAX_ITER)."""
    name = cfg.SOLVER.LR_SCHEDULER_NAME
    if max_iter is None and cfg.SOLVER.MAX_ITER == 0:
        raise ValueError("SOLVER.MAX_ITER is 0 (from SOLVER.EPOCHS): pass the derived max_iter")
    return WarmupLR(
        optimizer,
        max_iter=cfg.SOLVER.MAX_ITER if max_iter is None else max_iter,
        cosine=name == "WarmupCosineLR",
        steps=tuple(cfg.SOLVER.STEPS) if name == "WarmupMultiStepLR" else (),
        gamma=cfg.SOLVER.GAMMA,
        warmup_iters=cfg.SOLVER.WARMUP_ITERS,
        warmup_factor=cfg.SOLVER.WARMUP_FACTOR,
    )


# Iteration counts that a recipe gives for SOLVER.REFERENCE_BATCH_SIZE images per iteration.
_ITER_KEYS = (
    "SOLVER.MAX_ITER",
    "SOLVER.WARMUP_ITERS",
    "SOLVER.CHECKPOINT_PERIOD",
    "TEST.EVAL_PERIOD",
)


def scale_schedule_to_batch(cfg):
    """A recipe's schedule rescaled to the run's batch (detectron2's REFERENCE_WORLD_SIZE rule, by
    batch size instead of by number of GPUs).

    With SOLVER.SCALE_ITERS_WITH_BATCH, a recipe's BASE_LR and its iteration counts (MAX_ITER,
    STEPS, WARMUP_ITERS, CHECKPOINT_PERIOD, TEST.EVAL_PERIOD) are those of REFERENCE_BATCH_SIZE
    images per iteration. A run with IMS_PER_BATCH images multiplies the iteration counts by
    REFERENCE_BATCH_SIZE / IMS_PER_BATCH (rounded) and the learning rate by the inverse, so it
    trains the same number of epochs with the same schedule shape.

    Returns:
        (cfg, message): a frozen config whose values are the run's (REFERENCE_BATCH_SIZE becomes
        IMS_PER_BATCH, so scaling it again changes nothing) and a line for the log, or the config
        unchanged and "" when nothing scales.
    """
    ref, batch = cfg.SOLVER.REFERENCE_BATCH_SIZE, cfg.SOLVER.IMS_PER_BATCH
    if not cfg.SOLVER.SCALE_ITERS_WITH_BATCH or not ref or ref == batch:
        return cfg, ""
    factor = ref / batch
    cfg = cfg.clone()
    cfg.defrost()
    scaled = []
    for key in _ITER_KEYS:
        node, leaf = _node(cfg, key)
        old = node[leaf]
        node[leaf] = max(1, int(round(old * factor))) if old else 0
        scaled.append(f"{key} {old} -> {node[leaf]}")
    cfg.SOLVER.STEPS = tuple(int(round(s * factor)) for s in cfg.SOLVER.STEPS)
    scaled.append(f"SOLVER.STEPS -> {list(cfg.SOLVER.STEPS)}")
    cfg.SOLVER.BASE_LR = cfg.SOLVER.BASE_LR * batch / ref
    cfg.SOLVER.REFERENCE_BATCH_SIZE = batch
    cfg.freeze()
    message = (
        f"schedule scaled from the recipe's {ref} to {batch} images per iteration "
        f"(SOLVER.SCALE_ITERS_WITH_BATCH): lr {cfg.SOLVER.BASE_LR:g}, " + ", ".join(scaled)
    )
    return cfg, message


def _node(cfg, key):
    *parents, leaf = key.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    return node, leaf
