"""The batch sampler of pretraining: an infinite, resumable stream of (epoch, index) keys.

The order of epoch ``e`` depends only on (seed, e), and iteration ``t`` only on t, so a run resumed
at iteration ``start_iter`` sees exactly the batches the uninterrupted run would have seen, on any
number of processes with the same global batch.
"""

import numpy as np

__all__ = ["PretrainBatchSampler"]

# Appended to (seed, epoch) for the order stream. Larger than any dataset index, so the order
# stream can never coincide with the stream of a sample, SeedSequence([seed, epoch, index]).
_ORDER_STREAM = 2**40 + 1


class PretrainBatchSampler:
    """Yields this rank's list of (epoch, index) keys for every iteration, forever.

    Each epoch is a permutation of the dataset cut into ``iters_per_epoch`` global batches (the tail
    that does not fill a global batch is dropped); rank ``r`` takes the slice
    ``[r * batch_size_per_rank, (r + 1) * batch_size_per_rank)`` of every global batch.

    Args:
        dataset_size: number of images n.
        batch_size_per_rank: images per iteration in this process.
        seed: epoch e's order is ``PCG64(SeedSequence([seed, e, _ORDER_STREAM])).permutation(n)``.
        rank, world_size: this process and the number of processes.
        start_iter: first iteration to yield (resume).
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size_per_rank: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_iter: int = 0,
    ):
        if batch_size_per_rank < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"need batch_size_per_rank >= 1 and 0 <= rank < world_size; got "
                f"{batch_size_per_rank}, rank {rank}, world_size {world_size}"
            )
        global_batch = batch_size_per_rank * world_size
        if dataset_size < global_batch:
            raise ValueError(
                f"dataset of {dataset_size} images is smaller than one global batch of "
                f"{global_batch} ({batch_size_per_rank} per rank x {world_size} ranks)"
            )
        if start_iter < 0:
            raise ValueError(f"start_iter must be >= 0, got {start_iter}")
        self.dataset_size = dataset_size
        self.batch_size_per_rank = batch_size_per_rank
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.start_iter = start_iter
        self.iters_per_epoch = dataset_size // global_batch

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The permutation of epoch ``epoch``, (n,) int64."""
        seq = np.random.SeedSequence([self.seed, epoch, _ORDER_STREAM])
        return np.random.Generator(np.random.PCG64(seq)).permutation(self.dataset_size)

    def __iter__(self):
        it = self.start_iter
        epoch, order = None, None
        global_batch = self.batch_size_per_rank * self.world_size
        while True:
            e, t = divmod(it, self.iters_per_epoch)
            if e != epoch:
                epoch, order = e, self.epoch_order(e)
            start = t * global_batch + self.rank * self.batch_size_per_rank
            yield [(epoch, int(i)) for i in order[start : start + self.batch_size_per_rank]]
            it += 1
