"""Batch samplers of detection fine-tuning: aspect-ratio grouped training keys, test shards.

Without grouping, training uses pretraining's PretrainBatchSampler as it is. With it, a process's
batch holds only landscape or only portrait images (detectron2's AspectRatioGroupedDataset idea:
less padding), while every batch stays a function of (SEED, iteration) for exact resume.
"""

import numpy as np

from ..samplers import PretrainBatchSampler

__all__ = ["GroupedBatchSampler", "aspect_groups", "inference_shard"]


def aspect_groups(records) -> np.ndarray:
    """Group id of every record: 0 landscape (w > h), 1 portrait or square (as detectron2)."""
    return np.array([0 if r["width"] > r["height"] else 1 for r in records], np.int64)


class GroupedBatchSampler(PretrainBatchSampler):
    """Yields this rank's list of (epoch, index) keys for every iteration, each of one group.

    Epoch ``e`` walks the permutation of PretrainBatchSampler.epoch_order(e) (same seed rule) and
    drops each index into its group's bucket; a bucket that reaches ``batch_size_per_rank`` images
    becomes a batch, so the epoch is a list of single-group batches in the order they filled (what
    detectron2's grouping does to one stream). Consecutive runs of ``world_size`` batches form the
    iterations: rank r takes batch ``t * world_size + r`` of iteration t. Partly filled buckets at
    the end of the epoch are dropped, and so is a tail of fewer than ``world_size`` batches. The
    number of batches per epoch depends only on the group sizes, so iteration -> (epoch, batch) is
    a fixed division, and resuming mid-epoch recomputes the epoch's batches and skips to it.

    Args:
        group_ids: (n,) int group of every image (see aspect_groups).
        batch_size_per_rank, seed, rank, world_size, start_iter: as PretrainBatchSampler.
    """

    def __init__(
        self,
        group_ids,
        batch_size_per_rank: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_iter: int = 0,
    ):
        self.group_ids = np.asarray(group_ids, np.int64)
        super().__init__(
            len(self.group_ids), batch_size_per_rank, seed, rank, world_size, start_iter
        )
        sizes = np.bincount(self.group_ids)
        self.iters_per_epoch = int((sizes // batch_size_per_rank).sum()) // world_size
        if self.iters_per_epoch == 0:
            raise ValueError(
                f"aspect-ratio groups of {sizes.tolist()} images cannot fill {world_size} batches "
                f"of {batch_size_per_rank}; use more images or DATALOADER.ASPECT_RATIO_GROUPING "
                f"False"
            )

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """All single-group batches of epoch ``epoch`` in order, (num_batches, batch) int64."""
        b = self.batch_size_per_rank
        order = self.epoch_order(epoch)
        groups = self.group_ids[order]
        batches, filled_at = [], []
        for g in np.unique(groups):
            positions = np.flatnonzero(groups == g)  # where this group's images stand in order
            full = len(positions) // b * b
            batches.append(order[positions[:full]].reshape(-1, b))
            filled_at.append(positions[b - 1 : full : b])  # position of each batch's last image
        return np.concatenate(batches)[np.argsort(np.concatenate(filled_at), kind="stable")]

    def __iter__(self):
        it = self.start_iter
        epoch, batches = None, None
        while True:
            e, t = divmod(it, self.iters_per_epoch)
            if e != epoch:
                epoch, batches = e, self.epoch_batches(e)
            yield [(epoch, int(i)) for i in batches[t * self.world_size + self.rank]]
            it += 1


def inference_shard(num_images: int, rank: int = 0, world_size: int = 1) -> range:
    """The contiguous, in-order indices rank ``rank`` evaluates; the ranks' shards are disjoint,
    cover all images and differ in size by at most one."""
    if not 0 <= rank < world_size:
        raise ValueError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
    base, extra = divmod(num_images, world_size)
    start = rank * base + min(rank, extra)
    return range(start, start + base + (rank < extra))
