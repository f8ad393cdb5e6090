"""SGD and the per-iteration learning-rate schedules: warm-up, then cosine, constant or steps."""

import bisect
import math

import torch
from torch.optim.lr_scheduler import LRScheduler


def scaled_lr(cfg) -> float:
    """The linear scaling rule: lr = BASE_LR * IMS_PER_BATCH / REFERENCE_BATCH_SIZE."""
    ref = cfg.SOLVER.REFERENCE_BATCH_SIZE
    return cfg.SOLVER.BASE_LR * (cfg.SOLVER.IMS_PER_BATCH / ref if ref else 1.0)


def build_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """SGD over the trainable (query-side) parameters; weight decay on all of them, as MoCo does."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(
        params,
        lr=scaled_lr(cfg),
        momentum=cfg.SOLVER.MOMENTUM,
        nesterov=cfg.SOLVER.NESTEROV,
        weight_decay=cfg.SOLVER.WEIGHT_DECAY,
    )


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


def build_lr_scheduler(cfg, optimizer, max_iter: int = None) -> WarmupLR:
    """The schedule of SOLVER.LR_SCHEDULER_NAME over ``max_iter`` (default SOLVER.MAX_ITER)."""
    name = cfg.SOLVER.LR_SCHEDULER_NAME
    return WarmupLR(
        optimizer,
        max_iter=cfg.SOLVER.MAX_ITER if max_iter is None else max_iter,
        cosine=name == "WarmupCosineLR",
        steps=tuple(cfg.SOLVER.STEPS) if name == "WarmupMultiStepLR" else (),
        gamma=cfg.SOLVER.GAMMA,
        warmup_iters=cfg.SOLVER.WARMUP_ITERS,
        warmup_factor=cfg.SOLVER.WARMUP_FACTOR,
    )
