"""The evaluator contract and the inference loop that feeds it (detectron2's ``DatasetEvaluator``).

Every process runs the model on its shard of the test set and hands each batch to
``evaluator.process``; ``evaluator.evaluate`` gathers what all processes kept onto rank 0 and scores
it there. Results are ``{"bbox": {"AP": .., "AP50": .., ...}, "segm": {...}}`` with AP in percent.
"""

import datetime
import logging
import time

import torch
from torch.nn.parallel import DistributedDataParallel

from insloc.utils import comm
from insloc.utils.device import to_device

from .coco_format import prediction_from_output

logger = logging.getLogger("insloc.evaluation")

# Progress is logged at most this often, and the first iterations are left out of the time per image
# (cuDNN autotuning, allocator warm-up, worker start-up).
LOG_PERIOD_S = 5.0
WARMUP_ITERS = 5


class DatasetEvaluator:
    """Accumulates a model's outputs over a dataset and scores them.

    ``process`` keeps each image's compact prediction (``prediction_from_output``: picklable,
    with an "image_id") in ``self._predictions``; subclasses score the list that :meth:`gather`
    returns in ``evaluate``, which is called in every process (it holds a collective).
    """

    def reset(self) -> None:
        """Forget everything processed so far (called before each evaluation)."""
        self._predictions = []

    def process(self, inputs: list, outputs: list) -> None:
        """Keep what scoring needs from one batch.

        Args:
            inputs: the test samples of the batch (dicts with "image_id", "height", "width", ...).
            outputs: the model's output for each, ``{"boxes": N x 4, "scores": N, "classes": N,
                "masks": N x height x width (optional)}``.
        """
        for sample, output in zip(inputs, outputs):
            self._predictions.append(prediction_from_output(sample, output))

    def evaluate(self) -> dict:
        """Scores on rank 0: ``{task: {metric: value}}``; ``{}`` on other ranks."""
        raise NotImplementedError

    def gather(self):
        """All processes' predictions concatenated in rank order on rank 0; None on other ranks.

        An image seen twice (a sampler that pads shards to equal length) is kept once: scored
        twice, its detections would be duplicates.
        """
        gathered = comm.all_gather_object(self._predictions)
        if not comm.is_main_process():
            return None
        seen, predictions = set(), []
        for pred in (pred for per_rank in gathered for pred in per_rank):
            if pred["image_id"] not in seen:
                seen.add(pred["image_id"])
                predictions.append(pred)
        repeated = sum(len(per_rank) for per_rank in gathered) - len(predictions)
        if repeated:
            logger.warning("%d repeated images were evaluated once each", repeated)
        return predictions


def inference_on_dataset(model, loader, evaluator: DatasetEvaluator, device) -> dict:
    """Run ``model`` over this process's shard in ``loader`` and score it with ``evaluator``.

    The model runs in eval mode under ``torch.no_grad()``; its training mode is restored afterwards,
    even when inference fails. Must be called in every process; shards may differ in length.

    Args:
        model: ``model(list_of_samples) -> list of output dicts`` in eval mode.
        loader: iterable of batches, each a list of test samples (this process's shard).
        evaluator: a :class:`DatasetEvaluator`.
        device: where the model is; every tensor of a sample is moved there.
    Returns:
        the evaluator's results on rank 0, ``{}`` on other ranks.
    """
    device = torch.device(device)
    # A DDP wrapper's forward may hold collectives (buffer broadcast): with shards of unequal
    # length they would hang, and inference needs none, so run the wrapped module.
    net = model.module if isinstance(model, DistributedDataParallel) else model
    num_batches = len(loader) if hasattr(loader, "__len__") else None
    logger.info(
        "Start inference on %s batches (this process's shard, %d processes)",
        "?" if num_batches is None else num_batches,
        comm.get_world_size(),
    )
    evaluator.reset()
    was_training = model.training
    model.eval()
    num_images = timed_images = 0
    timed_seconds = 0.0
    start = last_log = time.perf_counter()
    try:
        with torch.no_grad():
            for it, batch in enumerate(loader):
                if it == WARMUP_ITERS:
                    timed_images, timed_seconds = 0, 0.0
                tic = time.perf_counter()
                outputs = net(to_device(batch, device))
                if device.type == "cuda":
                    torch.cuda.synchronize(device)  # time the model, not the launch queue
                timed_seconds += time.perf_counter() - tic
                evaluator.process(batch, outputs)
                num_images += len(batch)
                timed_images += len(batch)
                now = time.perf_counter()
                if now - last_log > LOG_PERIOD_S:
                    last_log = now
                    _log_progress(it + 1, num_batches, num_images, now - start)
    finally:
        model.train(was_training)
    total = time.perf_counter() - start
    logger.info(
        "Inference done: %d images in %s (%.4f s/image for the model, %.4f s/image in all, "
        "per process on %d processes)",
        num_images,
        str(datetime.timedelta(seconds=int(total))),
        timed_seconds / max(timed_images, 1),
        total / max(num_images, 1),
        comm.get_world_size(),
    )
    results = evaluator.evaluate()
    return results if comm.is_main_process() and results else {}


def _log_progress(done: int, num_batches, num_images: int, elapsed: float) -> None:
    per_image = elapsed / max(num_images, 1)
    if num_batches is None:
        logger.info("Inference: %d batches, %.4f s/image", done, per_image)
        return
    eta = elapsed / done * (num_batches - done)
    logger.info(
        "Inference: %d/%d batches, %.4f s/image, ETA %s",
        done,
        num_batches,
        per_image,
        str(datetime.timedelta(seconds=int(eta))),
    )
