"""The matching results as the user sees them: ``pck.json`` and a table naming the protocol."""

import json
import os

from insloc.utils.file_io import atomic_write_text

__all__ = ["NORM_DESCRIPTIONS", "format_table", "write_pck_json"]

NORM_DESCRIPTIONS = {
    "image": "max side of the target image",
    "bbox": "max side of the target object box",
    "kps": "max side of the box around the target keypoints",
    "kps_padded": "max side of the target keypoint box padded with (-1, -1)",
}

PCK_JSON_KEYS = (
    "dataset", "pck@0.05", "pck@0.1", "pck@0.15", "per_class", "norm", "resize", "average",
    "pairs", "pairs_skipped", "keypoints", "seed",
)  # fmt: skip


def write_pck_json(result: dict, output_dir: str) -> str:
    """Write the ``pck.json`` fields of ``result`` to ``output_dir/pck.json``: the PCKs, the
    protocol, the pairs evaluated and skipped (unreadable images), and the SEED of the run."""
    os.makedirs(output_dir, exist_ok=True)
    path = os.path.join(output_dir, "pck.json")
    fields = {k: result[k] for k in PCK_JSON_KEYS if k in result}
    atomic_write_text(json.dumps(fields, indent=2) + "\n", path)
    return path


def format_table(result: dict) -> str:
    """Per-class and overall PCK with the normalisation, pixels and averaging spelled out."""
    alphas = [k for k in result if k.startswith("pck@")]
    lines = [
        f"dataset {result['dataset']}: {result['pairs']} pairs, {result['keypoints']} keypoints "
        f"({result.get('excluded_keypoints', 0)} missing or outside the image, excluded), "
        f"method {result.get('method', '?')}",
        f"PCK normalised by {result['norm']} ({NORM_DESCRIPTIONS[result['norm']]}), "
        f"{result['resize']} pixels, {result['average'].replace('_', '-')} average",
    ]
    names = [*result["per_class"], *result.get("per_difficulty", {}), "all"]
    width = max(len(c) for c in names) + 2
    lines.append(f"{'class':<{width}}" + "".join(f"{a.upper():>10}" for a in alphas))
    classes = result["per_class"] if list(result["per_class"]) != ["all"] else {}
    for cat, values in classes.items():
        lines.append(f"{cat:<{width}}" + "".join(f"{values[a]:>10.1f}" for a in alphas))
    lines.append(f"{'all':<{width}}" + "".join(f"{result[a]:>10.1f}" for a in alphas))
    for name, values in result.get("per_difficulty", {}).items():
        lines.append(f"{name:<{width}}" + "".join(f"{values[a]:>10.1f}" for a in alphas))
    return "\n".join(lines)
