"""Metrics of a run on rank 0: JSON lines in metrics.jsonl, and TensorBoard scalars."""

import json
import math
import os

from insloc.utils.file_io import atomic_write_text


class MetricsWriter:
    """Appends ``{"iteration": i, key: value, ...}`` lines and mirrors them to TensorBoard.

    Args:
        output_dir: the run's folder.
        resumed_at: the iteration a resumed run continues from: the lines of later iterations
            (written after that checkpoint by the run that was stopped) are dropped, since the
            resumed run writes them again; None: append to the file as it is.
    """

    def __init__(self, output_dir: str, tensorboard: bool = True, resumed_at=None):
        self.path = os.path.join(output_dir, "metrics.jsonl")
        if resumed_at is not None and os.path.isfile(self.path):
            _truncate_after(self.path, resumed_at)
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


def _truncate_after(path: str, iteration: int) -> None:
    """Keep the lines of ``path`` up to ``iteration``; rewritten atomically when any is dropped."""
    with open(path) as f:
        lines = f.readlines()
    kept = [line for line in lines if _iteration(line) <= iteration]
    if len(kept) < len(lines):
        atomic_write_text("".join(kept), path)


def _iteration(line: str) -> float:
    """The iteration of a metrics line; infinity (dropped) for a line cut short by a kill."""
    try:
        record = json.loads(line)
    except ValueError:
        return math.inf
    if not line.endswith("\n") or not isinstance(record, dict):
        return math.inf
    return record.get("iteration", math.inf)
