"""MoCo (He et al. 2020; v2: Chen et al. 2020) and the machinery InsLoc shares with it.

One step: the query encoder embeds view q; the key encoder, a momentum average of the query
encoder, embeds view k without gradient, with shuffle BN; each level's InfoNCE loss contrasts the
positive key with that level's queue of past keys; the keys of all processes are then enqueued.
"""

import copy
import logging
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config.registry import register_method
from ..data.datasets import TwoCropDataset
from ..utils import comm
from .backbone import build_backbone
from .heads import projection
from .norm import SplitBatchNorm, choose_split_groups, convert_to_split_bn

logger = logging.getLogger(__name__)


class GlobalEncoder(nn.Module):
    """Backbone, global average pooling and a projection head: MoCo v2's encoder.

    Args:
        backbone: returns {in_feature: N x C x h x w} (``build_backbone`` with "resnet").
        head: maps N x C to N x dim (``projection``).
        in_feature: the backbone output to pool.
        name: the name of the single embedding (and of its queue).
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, in_feature="res5", name="global"):
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.in_feature = in_feature
        self.name = name

    def forward(self, images: torch.Tensor, boxes=None) -> Dict[str, torch.Tensor]:
        """Args: images: N x 3 x H x W; boxes: ignored. Returns: {name: N x dim}, not normalised."""
        x = self.backbone(images)[self.in_feature].mean(dim=(2, 3))  # x: N x C
        return {self.name: self.head(x)}  # N x dim


class MoCo(nn.Module):
    """Momentum contrast with one queue per embedding level and one shared queue pointer.

    Args:
        encoder: ``encoder(images, boxes) -> {level: N x dim}`` (unnormalised); the key encoder is
            a deep copy of it.
        feature_names: the levels the encoder returns, in order; queue ``queue_<level>`` each.
        dim: embedding dimension.
        queue_size: K, keys per queue; a multiple of the global batch.
        momentum: m of the key encoder update ``k = m * k + (1 - m) * q`` (every parameter).
        temperature: softmax temperature.
        loss_weights: one weight per level (default 1.0 each).
        shuffle_bn: compute keys on images shuffled across processes (within the batch in one
            process), then unshuffle.
        split_bn_groups: > 0 replaces the encoder's ``BatchNorm2d`` by ``SplitBatchNorm`` with that
            many groups: shuffle BN in one process.
        mask_empty_queue: use only the queue slots that hold keys as negatives. The official code
            starts with random unit vectors, which are near-orthogonal to every real embedding
            (all close to each other at initialisation): until the queue is full they reward
            pulling all embeddings together, a collapse small networks do not recover from.
        pixel_mean, pixel_std: RGB normalisation of the uint8 input.
        channels_last: feed CUDA encoders channels_last images.
    """

    uses_boxes = False  # InsLoc's encoders pool the batch's "q_boxes" and "k_boxes"

    def __init__(
        self,
        *,
        encoder: nn.Module,
        feature_names: Sequence[str],
        dim: int = 128,
        queue_size: int = 65536,
        momentum: float = 0.999,
        temperature: float = 0.2,
        loss_weights: Optional[Sequence[float]] = None,
        shuffle_bn: bool = True,
        split_bn_groups: int = 0,
        mask_empty_queue: bool = True,
        pixel_mean: Sequence[float] = (123.675, 116.28, 103.53),
        pixel_std: Sequence[float] = (58.395, 57.12, 57.375),
        channels_last: bool = False,
    ):
        super().__init__()
        self.feature_names = list(feature_names)
        weights = list(loss_weights) if loss_weights else [1.0] * len(self.feature_names)
        if len(weights) != len(self.feature_names):
            raise ValueError(f"{len(weights)} loss weights for levels {self.feature_names}")
        self.loss_weights = dict(zip(self.feature_names, weights))
        self.queue_size = queue_size
        self.momentum = momentum
        self.temperature = temperature
        self.shuffle_bn = shuffle_bn
        self.mask_empty_queue = mask_empty_queue
        self.channels_last = channels_last

        if split_bn_groups > 0:
            encoder = convert_to_split_bn(encoder, split_bn_groups)
        self.encoder_q = encoder
        self.encoder_k = copy.deepcopy(encoder)
        for p in self.encoder_k.parameters():
            p.requires_grad_(False)
        _log_key_bn_mode(encoder, shuffle_bn, split_bn_groups)

        for name in self.feature_names:
            queue = F.normalize(torch.randn(dim, queue_size), dim=0)  # dim x K
            self.register_buffer(f"queue_{name}", queue)
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
        # Keys written so far, up to K: slots [0, queue_len) hold keys (the pointer starts at 0).
        self.register_buffer("queue_len", torch.zeros(1, dtype=torch.long))
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(3, 1, 1), persistent=False)

    @classmethod
    def from_config(cls, cfg) -> "MoCo":
        """MoCo v2: backbone "resnet", global pooling, MLP head, a single level named "global"."""
        backbone = build_backbone(cfg)
        head = projection(backbone.out_channels, cfg.MODEL.MOCO.MLP_DIM, cfg.MODEL.MOCO.DIM)
        encoder = GlobalEncoder(backbone, head, in_feature=backbone.out_feature)
        return cls(encoder=encoder, feature_names=["global"], **moco_kwargs(cfg))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 N x 3 x H x W RGB -> normalised float N x 3 x H x W (channels_last on CUDA)."""
        x = (images.float() - self.pixel_mean) / self.pixel_std  # x: N x 3 x H x W
        if self.channels_last and x.is_cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def forward(self, batch: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """
        Args:
            batch: "q", "k": uint8 N x 3 x H x W; with boxes, "q_boxes", "k_boxes": N x L x 4.
        Returns:
            "loss_<level>": weighted InfoNCE loss; "acc_<level>": detached top-1 accuracy of the
            positive among the K + 1 candidates.
        """
        q_boxes = batch["q_boxes"] if self.uses_boxes else None  # N x L x 4
        k_boxes = batch["k_boxes"] if self.uses_boxes else None  # N x L x 4
        n_all = batch["q"].shape[0] * comm.get_world_size()
        if self.queue_size % n_all:
            raise ValueError(
                f"MODEL.MOCO.QUEUE_SIZE ({self.queue_size}) must be a multiple of the global batch "
                f"({n_all}); change MODEL.MOCO.QUEUE_SIZE or SOLVER.IMS_PER_BATCH"
            )

        q = self.encoder_q(self.preprocess(batch["q"]), q_boxes)  # level: N x dim
        q = {name: F.normalize(v.float(), dim=1) for name, v in q.items()}  # level: N x dim

        with torch.no_grad():
            self._momentum_update_key_encoder()
            if self.shuffle_bn:
                im_k, k_boxes, perm = self._batch_shuffle(batch["k"], k_boxes)  # N x 3 x H x W
            else:
                im_k, perm = batch["k"], None
            k = self.encoder_k(self.preprocess(im_k), k_boxes)  # level: N x dim, shuffled
            k = {name: F.normalize(v.float(), dim=1) for name, v in k.items()}  # level: N x dim
            k_all = {name: self._gather_keys(v, perm) for name, v in k.items()}  # N_all x dim
            world, rank = comm.get_world_size(), comm.get_rank()
            k = {name: v.view(world, -1, v.shape[1])[rank] for name, v in k_all.items()}  # N x dim

        # Logits in float32 even under AMP: bf16's 3 significant digits are too coarse at 1 / T.
        with torch.autocast(batch["q"].device.type, enabled=False):
            out = self._contrastive_losses(q, k)
        self._dequeue_and_enqueue(k_all)
        return out

    def _contrastive_losses(self, q, k) -> Dict[str, torch.Tensor]:
        """InfoNCE with the positive at index 0, per level. Args: q, k: {level: N x dim}."""
        out = {}
        filled = torch.arange(self.queue_size, device=q[self.feature_names[0]].device)  # K
        filled = filled < self.queue_len if self.mask_empty_queue else filled >= 0  # K
        for name in self.feature_names:
            queue = getattr(self, f"queue_{name}").clone().detach()  # dim x K
            l_pos = (q[name] * k[name]).sum(dim=1, keepdim=True)  # l_pos: N x 1
            l_neg = (q[name] @ queue).masked_fill(~filled, float("-inf"))  # l_neg: N x K
            logits = torch.cat([l_pos, l_neg], dim=1) / self.temperature  # logits: N x (1 + K)
            labels = torch.zeros(len(logits), dtype=torch.long, device=logits.device)  # N
            loss = F.cross_entropy(logits, labels)
            out[f"loss_{name}"] = loss * self.loss_weights[name]
            out[f"acc_{name}"] = (logits.argmax(dim=1) == 0).float().mean().detach()
        return out

    @torch.no_grad()
    def encode(
        self, images: torch.Tensor, boxes: Optional[torch.Tensor] = None
    ) -> Dict[str, torch.Tensor]:
        """L2-normalised query embeddings, without gradient, in the module's current mode.

        Args:
            images: uint8 N x 3 x H x W RGB.
            boxes: N x L x 4 (InsLoc) or None (MoCo).
        Returns:
            {level: N x dim}.
        """
        q = self.encoder_q(self.preprocess(images), boxes)  # level: N x dim
        return {name: F.normalize(v.float(), dim=1) for name, v in q.items()}

    @torch.no_grad()
    def _momentum_update_key_encoder(self) -> None:
        q_params = [p.detach() for p in self.encoder_q.parameters()]
        k_params = list(self.encoder_k.parameters())
        torch._foreach_mul_(k_params, self.momentum)
        torch._foreach_add_(k_params, q_params, alpha=1.0 - self.momentum)

    @torch.no_grad()
    def _batch_shuffle(self, images: torch.Tensor, boxes: Optional[torch.Tensor]):
        """This process's share of the global batch in a random order (shuffle BN).

        Args:
            images: N x 3 x H x W (uint8: gathered before normalisation, 4x less traffic).
            boxes: N x L x 4 or None.
        Returns:
            images N x 3 x H x W, boxes N x L x 4 or None, perm (N_all,): global index of the
            sample at each shuffled position.
        """
        images_all = comm.all_gather_tensor(images)  # N_all x 3 x H x W
        # Every rank draws (their RNG streams advance alike); rank 0's permutation is used.
        perm = torch.randperm(len(images_all)).to(images.device)  # N_all
        comm.broadcast_tensor(perm, src=0)
        mine = perm.view(comm.get_world_size(), -1)[comm.get_rank()]  # N
        if boxes is not None:
            boxes = comm.all_gather_tensor(boxes)[mine]  # N x L x 4
        return images_all[mine], boxes, perm

    @torch.no_grad()
    def _gather_keys(self, k: torch.Tensor, perm: Optional[torch.Tensor]) -> torch.Tensor:
        """Keys of all processes in the original sample order.

        Args: k: N x dim (this process, shuffled when ``perm`` is given). Returns: N_all x dim.
        """
        k_all = comm.all_gather_tensor(k)  # N_all x dim
        if perm is not None:
            k_all = k_all[torch.argsort(perm)]  # N_all x dim, unshuffled
        return k_all

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: Dict[str, torch.Tensor]) -> None:
        """Write the N_all keys of each level at the shared pointer; ``queue_size % N_all == 0``."""
        n_all = len(next(iter(keys.values())))
        # Index tensor instead of int(queue_ptr): no device-to-host sync.
        index = self.queue_ptr + torch.arange(n_all, device=self.queue_ptr.device)  # N_all
        for name, k in keys.items():
            getattr(self, f"queue_{name}").index_copy_(1, index, k.t())
        self.queue_ptr.copy_((self.queue_ptr + n_all) % self.queue_size)
        self.queue_len.copy_((self.queue_len + n_all).clamp(max=self.queue_size))


def moco_kwargs(cfg) -> dict:
    """The constructor arguments MoCo and InsLoc read alike from ``cfg.MODEL``.

    In one process with ``MODEL.MOCO.SHUFFLE_BN``, shuffle BN is emulated with a split batch norm
    (``split_bn_groups``, PROTOCOLS.md); under several processes keys are shuffled across them.
    """
    m = cfg.MODEL.MOCO
    world = comm.get_world_size()
    batch = cfg.SOLVER.IMS_PER_BATCH
    if m.QUEUE_SIZE % batch:
        raise ValueError(
            f"MODEL.MOCO.QUEUE_SIZE ({m.QUEUE_SIZE}) must be a multiple of SOLVER.IMS_PER_BATCH "
            f"({batch}); change one of them"
        )
    split = split_bn_groups(cfg) if m.SHUFFLE_BN and world == 1 else 0
    return dict(
        dim=m.DIM,
        queue_size=m.QUEUE_SIZE,
        momentum=m.MOMENTUM,
        temperature=m.TEMPERATURE,
        shuffle_bn=m.SHUFFLE_BN,
        split_bn_groups=split,
        mask_empty_queue=m.MASK_EMPTY_QUEUE,
        pixel_mean=tuple(cfg.MODEL.PIXEL_MEAN),
        pixel_std=tuple(cfg.MODEL.PIXEL_STD),
        channels_last=cfg.MODEL.CHANNELS_LAST,
    )


def split_bn_groups(cfg) -> int:
    """Groups of the split batch norm of a one-process run, logged with why.

    MODEL.MOCO.SPLIT_BN_GROUPS when > 0 (the batch must be a multiple of it), else chosen from the
    batch to keep MODEL.MOCO.SPLIT_BN_SAMPLES_PER_GROUP samples per group where the batch allows
    (``choose_split_groups``). A batch too small for that is warned about, not refused.
    """
    m = cfg.MODEL.MOCO
    batch = cfg.SOLVER.IMS_PER_BATCH
    target = m.SPLIT_BN_SAMPLES_PER_GROUP
    if m.SPLIT_BN_GROUPS > 0:
        groups = m.SPLIT_BN_GROUPS
        if batch % groups:
            raise ValueError(
                f"shuffle BN in one process splits the batch of SOLVER.IMS_PER_BATCH ({batch}) "
                f"into MODEL.MOCO.SPLIT_BN_GROUPS ({groups}) groups; change one so the batch is a "
                "multiple, or set MODEL.MOCO.SPLIT_BN_GROUPS 0 to choose the groups from the batch"
            )
        how = "MODEL.MOCO.SPLIT_BN_GROUPS"
    else:
        groups = choose_split_groups(batch, target)
        how = f"chosen for MODEL.MOCO.SPLIT_BN_SAMPLES_PER_GROUP {target}"
    per_group = batch // groups
    samples = f"{per_group} sample" + ("s" if per_group > 1 else "")
    logger.info(f"split batch norm: the batch of {batch} in {groups} groups of {samples} ({how})")
    if groups < 2:
        logger.warning(
            f"split batch norm: a batch of {batch} cannot be split, so shuffle BN has no effect: "
            "the key encoder's BN statistics span the query's samples; fine for a quick look only"
        )
    elif per_group < max(2, target // 4):
        logger.warning(
            f"split batch norm: groups of {samples}, far below the recipe's {target}: "
            f"BN statistics of so few samples are noisy and training will not match the recipe "
            f"(fine for a quick look); a larger SOLVER.IMS_PER_BATCH keeps {target} per group"
        )
    return groups


def _log_key_bn_mode(encoder: nn.Module, shuffle_bn: bool, split_bn_groups: int) -> None:
    world = comm.get_world_size()
    modules = list(encoder.modules())
    if not any(isinstance(m, (nn.BatchNorm2d, nn.SyncBatchNorm)) for m in modules):
        mode = "no batch norm (GN or none): no batch statistics to decorrelate"
    elif not any(isinstance(m, nn.BatchNorm2d) for m in modules):
        mode = "SyncBN: statistics span the global batch, shuffling keys changes nothing"
    elif not shuffle_bn:
        mode = "MODEL.MOCO.SHUFFLE_BN off: the key encoder's BN statistics may leak the batch"
    elif world > 1:
        mode = f"shuffle BN: keys shuffled across {world} processes"
    elif any(isinstance(m, SplitBatchNorm) for m in modules):
        mode = (
            f"shuffle BN in one process: keys shuffled within the batch, BN split into "
            f"{split_bn_groups} groups"
        )
    else:
        mode = "keys shuffled in one process without split BN: BN statistics span the whole batch"
    logger.info("MoCo key encoder: %s", mode)


register_method(
    "MoCo",
    task="pretraining",
    model=MoCo,
    dataset=TwoCropDataset,
    arch_keys=("MODEL.MOCO.DIM", "MODEL.MOCO.QUEUE_SIZE"),
    backbones=("resnet",),
)
