"""SGD and the per-iteration learning-rate schedule of the pretraining recipes."""

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
    """Linear warm-up from ``warmup_factor`` followed by a cosine decay to 0, a constant lr, or
    steps: the lr times ``gamma`` ** (number of ``steps`` <= iteration).

    Stepped once per iteration; its state is plain numbers, so checkpoints stay weights-only.

    Args:
        optimizer: the optimizer whose groups' lr it sets.
        max_iter: iterations of the whole run (the cosine reaches 0 there).
        cosine: cosine decay; ignored when ``steps`` is given.
        warmup_iters, warmup_factor: linear warm-up from ``warmup_factor`` to 1.
        steps: increasing iterations of the multi-step schedule (empty: no steps).
        gamma: factor applied at each step.
    """

    def __init__(
        self,
        optimizer,
        *,
        max_iter,
        cosine=True,
        warmup_iters=0,
        warmup_factor=0.001,
        steps=(),
        gamma=0.1,
    ):
        self.max_iter = max_iter
        self.cosine = cosine and not steps
        self.warmup_iters = warmup_iters
        self.warmup_factor = warmup_factor
        self.steps = [int(s) for s in steps]
        if any(b <= a for a, b in zip(self.steps, self.steps[1:])):
            raise ValueError(f"lr steps must increase, got {self.steps}")
        self.gamma = gamma
        super().__init__(optimizer)

    def factor(self, it: int) -> float:
        if self.steps:
            f = self.gamma ** bisect.bisect_right(self.steps, it)
        else:
            f = 0.5 * (1.0 + math.cos(math.pi * it / self.max_iter)) if self.cosine else 1.0
        if it < self.warmup_iters:
            alpha = it / self.warmup_iters
            f *= self.warmup_factor * (1 - alpha) + alpha
        return f

    def get_lr(self):
        return [base * self.factor(self.last_epoch) for base in self.base_lrs]


def build_lr_scheduler(cfg, optimizer) -> WarmupLR:
    multistep = cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupMultiStepLR"
    if multistep and not cfg.SOLVER.STEPS:
        raise ValueError("SOLVER.LR_SCHEDULER_NAME 'WarmupMultiStepLR' needs SOLVER.STEPS")
    return WarmupLR(
        optimizer,
        max_iter=cfg.SOLVER.MAX_ITER,
        cosine=cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupCosineLR",
        warmup_iters=cfg.SOLVER.WARMUP_ITERS,
        warmup_factor=cfg.SOLVER.WARMUP_FACTOR,
        steps=cfg.SOLVER.STEPS if multistep else (),
        gamma=cfg.SOLVER.GAMMA,
    )
