"""Normalisation layers by name, and the split batch norm emulating shuffle BN in one process."""

import logging
import math
from functools import partial
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

from ..utils import comm

logger = logging.getLogger(__name__)


def get_norm(name: str, channels: int) -> Optional[nn.Module]:
    """A normalisation layer for ``channels`` channels.

    Args:
        name: "BN", "SyncBN", "FrozenBN" (fixed affine statistics, torchvision's
            ``FrozenBatchNorm2d``), "GN" (32 groups) or "" (no normalisation: returns None).
        channels: number of channels C of the N x C x H x W input.
    """
    if name == "":
        return None
    if name == "BN":
        return nn.BatchNorm2d(channels)
    if name == "SyncBN":
        return nn.SyncBatchNorm(channels)
    if name == "FrozenBN":
        return FrozenBatchNorm2d(channels)
    if name == "GN":
        return nn.GroupNorm(32, channels)
    raise ValueError(f"unknown norm {name!r}: expected 'BN', 'SyncBN', 'FrozenBN', 'GN' or ''")


def norm_layer(name: str) -> Optional[Callable[[int], nn.Module]]:
    """``get_norm`` as the ``norm_layer(channels)`` callable torchvision takes (None for "")."""
    if name == "":
        return None
    get_norm(name, 32)  # fail now on an unknown name, not deep inside a torchvision constructor
    return partial(get_norm, name)


class SplitBatchNorm(nn.BatchNorm2d):
    """Batch norm that normalises each of ``num_splits`` contiguous groups of the batch separately.

    In one process it plays the role of one GPU's batch in shuffle BN (MoCo's single-GPU demo): with
    the keys shuffled, each group's statistics mix samples of different query groups. The running
    statistics are the mean over groups; in eval mode it is a plain ``BatchNorm2d``. Parameter and
    buffer names are those of ``BatchNorm2d``, so weights move between the two freely.
    """

    def __init__(self, num_features: int, num_splits: int, **kwargs):
        super().__init__(num_features, **kwargs)
        if num_splits < 1:
            raise ValueError(f"num_splits must be >= 1, got {num_splits}")
        self.num_splits = num_splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x: N x C x H x W, N a multiple of ``num_splits``. Returns N x C x H x W."""
        if not self.training:
            return super().forward(x)
        n, c, h, w = x.shape
        g = self.num_splits
        if n % g:
            raise ValueError(
                f"split batch norm: a batch of {n} does not split into {g} groups; change "
                "SOLVER.IMS_PER_BATCH or MODEL.MOCO.SPLIT_BN_GROUPS (0: chosen from the batch) so "
                "the per-process batch is a multiple of the groups"
            )
        # Fold group i into channels i*C..(i+1)*C so one batch_norm call gives per-group statistics.
        x = (
            x.reshape(g, n // g, c, h, w).transpose(0, 1).reshape(n // g, g * c, h, w)
        )  # N/g x gC x H x W
        momentum = self.momentum
        mean = var = None
        if self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if momentum is None:  # cumulative moving average, as BatchNorm2d
                momentum = 1.0 / float(self.num_batches_tracked)
            mean = self.running_mean.repeat(g)  # gC
            var = self.running_var.repeat(g)  # gC
        weight = self.weight.repeat(g) if self.weight is not None else None  # gC
        bias = self.bias.repeat(g) if self.bias is not None else None  # gC
        y = F.batch_norm(x, mean, var, weight, bias, True, momentum or 0.0, self.eps)
        if self.track_running_stats:
            self.running_mean.copy_(mean.view(g, c).mean(0))
            self.running_var.copy_(var.view(g, c).mean(0))
        return y.reshape(n // g, g, c, h, w).transpose(0, 1).reshape(n, c, h, w)  # N x C x H x W

    def extra_repr(self) -> str:
        return super().extra_repr() + f", num_splits={self.num_splits}"


def choose_split_groups(batch: int, samples_per_group: int) -> int:
    """Groups of the split batch norm for a one-process batch, from the recipe's samples per group.

    The divisor of ``batch`` whose group size is closest to ``samples_per_group`` (in ratio; ties
    go to the larger groups), and at least 2 groups: with one group the key encoder's statistics
    span the same samples as the query's and shuffling the keys changes nothing.

    Returns:
        the number of groups g, g divides ``batch``; 1 only for a batch of 1.
    """
    divisors = [g for g in range(2, batch + 1) if batch % g == 0]
    if not divisors:
        return 1
    return min(divisors, key=lambda g: (abs(math.log(batch / g / samples_per_group)), g))


def convert_to_split_bn(module: nn.Module, num_splits: int) -> nn.Module:
    """Replace every plain ``BatchNorm2d`` in ``module`` (not SyncBN) by a :class:`SplitBatchNorm`.

    Weights, running statistics and train/eval mode are kept. Children are replaced in place; the
    return value is ``module`` itself, or the new layer when ``module`` is a ``BatchNorm2d``.
    """
    if type(module) is nn.BatchNorm2d:
        new = SplitBatchNorm(
            module.num_features,
            num_splits,
            eps=module.eps,
            momentum=module.momentum,
            affine=module.affine,
            track_running_stats=module.track_running_stats,
        )
        new.load_state_dict(module.state_dict())
        ref = next(iter(module.state_dict().values()), None)
        if ref is not None:
            new.to(ref.device)
        return new.train(module.training)
    for name, child in module.named_children():
        new = convert_to_split_bn(child, num_splits)
        if new is not child:
            setattr(module, name, new)
    return module


class DeferredSyncBatchNorm(nn.BatchNorm2d):
    """SyncBN as the detectors hold it: a plain ``BatchNorm2d`` in one process (one GPU or a CPU
    never fails on it, MoCo issue #112), made ``nn.SyncBatchNorm`` by
    :func:`convert_sync_bn_if_distributed` once the run is distributed. Same state dict names."""


def _replace_norms(module: nn.Module, convert) -> nn.Module:
    """Apply ``convert(layer) -> layer or None`` to every descendant; None keeps the layer."""
    new = convert(module)
    if new is not None:
        return new
    for name, child in module.named_children():
        replaced = _replace_norms(child, convert)
        if replaced is not child:
            setattr(module, name, replaced)
    return module


def _copy_bn(old: nn.modules.batchnorm._BatchNorm, cls) -> nn.Module:
    new = cls(old.num_features, old.eps, old.momentum, old.affine, old.track_running_stats)
    new.load_state_dict(old.state_dict())
    ref = next(iter(old.state_dict().values()), None)
    if ref is not None:
        new.to(ref.device)
    if old.affine:
        new.weight.requires_grad_(old.weight.requires_grad)
        new.bias.requires_grad_(old.bias.requires_grad)
    return new.train(old.training)


def defer_sync_bn(module: nn.Module) -> nn.Module:
    """Replace every ``nn.SyncBatchNorm`` by a :class:`DeferredSyncBatchNorm` (weights kept)."""
    return _replace_norms(
        module,
        lambda m: _copy_bn(m, DeferredSyncBatchNorm) if type(m) is nn.SyncBatchNorm else None,
    )


def convert_sync_bn_if_distributed(module: nn.Module, device=None) -> nn.Module:
    """Turn every :class:`DeferredSyncBatchNorm` into ``nn.SyncBatchNorm`` when the run has several
    processes on CUDA; otherwise return ``module`` unchanged (a warning says why for CPU runs
    under DDP: PyTorch's SyncBN has no CPU implementation). Call it before wrapping in DDP.

    Args:
        module: the model (its other batch norms are left alone).
        device: where it will run; default: where its parameters are now.
    """
    if comm.get_world_size() == 1:
        return module
    deferred = [m for m in module.modules() if type(m) is DeferredSyncBatchNorm]
    if not deferred:
        return module
    if device is None:
        device = next(module.parameters()).device
    if torch.device(device).type != "cuda":
        logger.warning(
            "SyncBN on CPU: PyTorch synchronises batch norm on CUDA only; each of the %d "
            "processes normalises with its own batch",
            comm.get_world_size(),
        )
        return module
    return _replace_norms(
        module,
        lambda m: _copy_bn(m, nn.SyncBatchNorm) if type(m) is DeferredSyncBatchNorm else None,
    )


def convert_to_frozen_bn(module: nn.Module) -> nn.Module:
    """Replace every batch norm (BN, SyncBN, split BN) by a ``FrozenBatchNorm2d`` with its affine
    parameters and running statistics (detectron2's ``convert_frozen_batchnorm``)."""

    def freeze(m):
        if not isinstance(m, nn.modules.batchnorm._BatchNorm):
            return None
        frozen = FrozenBatchNorm2d(m.num_features, m.eps)
        for name in ("weight", "bias", "running_mean", "running_var"):
            source = getattr(m, name)
            if source is not None:
                getattr(frozen, name).copy_(source.detach())
        return frozen.to(m.running_mean.device if m.running_mean is not None else "cpu")

    return _replace_norms(module, freeze)
