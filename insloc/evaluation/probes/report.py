"""Linear-probe results of several checkpoints: a text table, JSON, and a PNG of accuracy by layer.

``results`` is ``{checkpoint name: {layer: {"accuracy": float, ...}}}`` with layers in the trunk's
order; accuracies are fractions, printed in percent.
"""

import json
import os

from insloc.utils.file_io import atomic_write_text

__all__ = ["format_table", "plot_accuracy_by_layer", "save_json"]


def format_table(results: dict, metric: str = "accuracy") -> str:
    """Rows: layers (in first-seen order); columns: checkpoints; cells: ``metric`` in %
    ("accuracy": top-1, or "mean_class_accuracy")."""
    names = list(results)
    layers = []
    for per_layer in results.values():
        layers += [layer for layer in per_layer if layer not in layers]
    width = max([len("layer")] + [len(layer) for layer in layers])
    cols = [max(8, len(n)) for n in names]
    lines = ["  ".join(["layer".ljust(width)] + [n.rjust(c) for n, c in zip(names, cols)])]
    for layer in layers:
        cells = []
        for n, c in zip(names, cols):
            r = results[n].get(layer)
            cells.append(("-" if r is None else f"{100 * r[metric]:.1f}").rjust(c))
        lines.append("  ".join([layer.ljust(width)] + cells))
    return "\n".join(lines)


def save_json(results: dict, path: str, meta: dict = None) -> None:
    """Write ``{"meta": ..., "results": ...}`` atomically (``path`` must not exist)."""
    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists; refusing to overwrite it")
    atomic_write_text(json.dumps({"meta": meta or {}, "results": results}, indent=2), path)


def plot_accuracy_by_layer(results: dict, path: str, title: str = "") -> None:
    """Accuracy (%) by layer, one line per checkpoint, saved as a PNG (``path`` must not exist)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if os.path.exists(path):
        raise FileExistsError(f"{path} already exists; refusing to overwrite it")
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for name, per_layer in results.items():
        layers = list(per_layer)
        ax.plot(
            range(len(layers)),
            [100 * per_layer[layer]["accuracy"] for layer in layers],
            marker="o",
            label=name,
        )
        ax.set_xticks(range(len(layers)), layers, rotation=30)
    ax.set_ylabel("test accuracy (%)")
    ax.set_xlabel("layer")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    tmp = path + ".tmp.png"
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
