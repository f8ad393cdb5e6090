"""Evaluation results for people and for scripts: a log table per task and ``results.json``.

Results are ``{dataset: {task: {metric: value}}}``; per-class entries are ``AP-<class>`` (and
``AP50-<class>`` for VOC), the others are the summary metrics (AP, AP50, AP75, ...).
"""

import json
import logging
import math
import os

from insloc.utils.file_io import atomic_write_text

logger = logging.getLogger("insloc.evaluation")

PER_CLASS_PREFIXES = ("AP-", "AP50-")


def format_results_table(dataset_name: str, task: str, metrics: dict, columns: int = 3) -> str:
    """Plain text: the summary metrics on one row, then per-class AP (and AP50) in columns."""
    summary = {k: v for k, v in metrics.items() if not k.startswith(PER_CLASS_PREFIXES)}
    lines = [f"{dataset_name} {task}:"]
    lines.append(" | ".join(f"{k:>7}" for k in summary))
    lines.append(" | ".join(f"{_fmt(v):>7}" for v in summary.values()))
    names = [k[len("AP-") :] for k in metrics if k.startswith("AP-")]
    if names:
        has_ap50 = any(k.startswith("AP50-") for k in metrics)
        width = max(len("category"), *(len(n) for n in names))
        cell_header = f"{'category':<{width}} {'AP':>7}" + (f" {'AP50':>7}" if has_ap50 else "")
        cells = [
            f"{n:<{width}} {_fmt(metrics[f'AP-{n}']):>7}"
            + (f" {_fmt(metrics.get(f'AP50-{n}')):>7}" if has_ap50 else "")
            for n in names
        ]
        ncols = min(columns, len(cells))
        lines.append(" | ".join([cell_header] * ncols))
        for start in range(0, len(cells), ncols):
            lines.append(" | ".join(cells[start : start + ncols]))
        # COCO leaves a class without ground truth undefined (nan) and out of the mean
        defined = [metrics[f"AP-{n}"] for n in names if not math.isnan(metrics[f"AP-{n}"])]
        mean = sum(defined) / len(defined) if defined else float("nan")
        lines.append(f"mean AP over the {len(defined)} classes with a value: {_fmt(mean)}")
    # detectron2's "copypaste" line: the summary in one comma-separated row for spreadsheets
    lines.append(f"copypaste: {','.join(summary)}")
    lines.append(f"copypaste: {','.join(_fmt(v) for v in summary.values())}")
    return "\n".join(lines)


def print_results_table(dataset_name: str, results: dict, log=None) -> None:
    """Log :func:`format_results_table` for every task of one dataset's results.

    Args:
        results: ``{task: {metric: value}}`` as an evaluator returns them.
        log: the logger to write to (default: "insloc.evaluation").
    """
    for task, metrics in results.items():
        (log or logger).info(
            "Evaluation results\n%s", format_results_table(dataset_name, task, metrics)
        )


def save_results_json(results_by_dataset: dict, path: str) -> None:
    """Write ``{dataset: {task: {metric: value}}}`` to ``path`` atomically (NaN as null).

    Call it on rank 0 (the only process with results).
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    clean = {
        dataset: {
            task: {
                k: (None if v is None or math.isnan(v) else float(v)) for k, v in metrics.items()
            }
            for task, metrics in by_task.items()
        }
        for dataset, by_task in results_by_dataset.items()
    }
    atomic_write_text(json.dumps(clean, indent=2) + "\n", path)
    logger.info("Saved evaluation results to %s", path)


def _fmt(value) -> str:
    if value is None or math.isnan(value):
        return "nan"
    return f"{value:.3f}"
