"""Metrics of a run on rank 0: JSON lines in metrics.jsonl, and TensorBoard scalars."""

import json
import math
import os


class MetricsWriter:
    """Appends ``{"iteration": i, key: value, ...}`` lines and mirrors them to TensorBoard.

    A resumed run appends to the same files; ``iteration`` tells the lines apart.
    """

    def __init__(self, output_dir: str, tensorboard: bool = True):
        self.path = os.path.join(output_dir, "metrics.jsonl")
        self._file = open(self.path, "a")
        self._tb = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(log_dir=os.path.join(output_dir, "tensorboard"))

    def write(self, iteration: int, metrics: dict) -> None:
        record = {"iteration": iteration}
        for k, v in metrics.items():
            # counts stay integers (num_bad_images: 3, not 3.0); numpy and torch scalars -> float
            record[k] = v if isinstance(v, (int, str, bool)) or v is None else float(v)
        self._file.write(json.dumps(record, allow_nan=True) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in record.items():
                number = isinstance(v, (int, float)) and not isinstance(v, bool)
                if k != "iteration" and number and math.isfinite(v):
                    self._tb.add_scalar(k, v, iteration)
            self._tb.flush()

    def close(self) -> None:
        self._file.close()
        if self._tb is not None:
            self._tb.close()
