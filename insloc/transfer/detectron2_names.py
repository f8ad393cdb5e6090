"""insloc detector state dicts <-> detectron2 names, by renaming keys only (pure functions).

The detectors keep torchvision's names where torchvision has the module and detectron2's leaf
names where only the container differs (insloc -> detectron2):

- trunk: C4 ``backbone.`` / FPN ``backbone.body.`` -> ``backbone.`` / ``backbone.bottom_up.``;
  ``conv1``, ``bn1`` -> ``stem.conv1``, ``stem.conv1.norm``; ``layer{k}.{i}.conv{j}``, ``.bn{j}``
  -> ``res{k+1}.{i}.conv{j}``, ``.conv{j}.norm``; ``.downsample.0``, ``.downsample.1`` ->
  ``.shortcut``, ``.shortcut.norm``; ``roi_heads.res5.{i}.*`` the same way, ``roi_heads.res5.norm``
  (MoCo's extra norm) unchanged.
- FPN: ``backbone.fpn.inner_blocks.{i}.0``, ``.1`` -> ``backbone.fpn_lateral{i+2}``, ``.norm``;
  ``backbone.fpn.layer_blocks.{i}.*`` -> ``backbone.fpn_output{i+2}.*`` likewise.
- RPN: ``rpn.head.*`` -> ``proposal_generator.rpn_head.*``.
- box head: ``roi_heads.box_head.{i}.0``, ``.1`` (convs) -> ``roi_heads.box_head.conv{i+1}``,
  ``.norm``; the fcs in order -> ``fc1``, ``fc2``...; ``fc_extra_norm`` (InsLoc) unchanged;
  ``roi_heads.box_predictor.*`` unchanged (background last in both).
- masks: ``roi_heads.mask_head.{i}.0``, ``.1`` -> ``roi_heads.mask_head.mask_fcn{i+1}``, ``.norm``;
  ``roi_heads.mask_predictor.conv5_mask``, ``.mask_fcn_logits`` -> ``roi_heads.mask_head.deconv``,
  ``.predictor``.

Tensors are shared, not copied. A key no rule covers is an error naming it (no silent drop).
"""

import re
from typing import Callable, Dict, List, TypeVar

T = TypeVar("T")


def _trunk_to_d2(name: str) -> str:
    """torchvision ResNet names (``conv1``, ``layer1.0.bn2.weight``) -> detectron2's."""
    m = re.match(r"^layer(\d)\.(\d+)\.(.*)$", name)
    if m is None:
        for old, new in (("conv1.", "stem.conv1."), ("bn1.", "stem.conv1.norm.")):
            if name.startswith(old):
                return new + name[len(old) :]
        raise KeyError(name)
    stage, block, rest = int(m.group(1)) + 1, m.group(2), m.group(3)
    return f"res{stage}.{block}." + _block_to_d2(rest)


def _block_to_d2(rest: str) -> str:
    """Names inside one block: ``conv2.weight``, ``bn2.*``, ``downsample.{0,1}.*``."""
    for pattern, repl in (
        (r"^conv(\d)\.(.*)$", r"conv\1.\2"),
        (r"^bn(\d)\.(.*)$", r"conv\1.norm.\2"),
        (r"^downsample\.0\.(.*)$", r"shortcut.\1"),
        (r"^downsample\.1\.(.*)$", r"shortcut.norm.\1"),
    ):
        if re.match(pattern, rest):
            return re.sub(pattern, repl, rest)
    raise KeyError(rest)


def _trunk_from_d2(name: str) -> str:
    m = re.match(r"^res(\d)\.(\d+)\.(.*)$", name)
    if m is None:
        for old, new in (("stem.conv1.norm.", "bn1."), ("stem.conv1.", "conv1.")):
            if name.startswith(old):
                return new + name[len(old) :]
        raise KeyError(name)
    return f"layer{int(m.group(1)) - 1}.{m.group(2)}." + _block_from_d2(m.group(3))


def _block_from_d2(rest: str) -> str:
    for pattern, repl in (
        (r"^conv(\d)\.norm\.(.*)$", r"bn\1.\2"),
        (r"^conv(\d)\.(.*)$", r"conv\1.\2"),
        (r"^shortcut\.norm\.(.*)$", r"downsample.1.\1"),
        (r"^shortcut\.(.*)$", r"downsample.0.\1"),
    ):
        if re.match(pattern, rest):
            return re.sub(pattern, repl, rest)
    raise KeyError(rest)


def _conv_norm_to_d2(rest: str, prefix: str, offset: int) -> str:
    """``{i}.0.*`` -> ``{prefix}{i+offset}.*``, ``{i}.1.*`` -> ``{prefix}{i+offset}.norm.*``."""
    i, part, tail = rest.split(".", 2)
    return f"{prefix}{int(i) + offset}." + ("" if part == "0" else "norm.") + tail


def _conv_norm_from_d2(rest: str, prefix: str, offset: int) -> str:
    m = re.match(rf"^{prefix}(\d+)\.(norm\.)?(.*)$", rest)
    if m is None:
        raise KeyError(rest)
    return f"{int(m.group(1)) - offset}." + ("1." if m.group(2) else "0.") + m.group(3)


def _box_head_fcs(names: List[str]) -> List[int]:
    """Child indices of the box head's fcs (children ``{n}.weight`` with no conv/norm part)."""
    return sorted({int(n.split(".")[0]) for n in names if re.match(r"^\d+\.(weight|bias)$", n)})


def _one_to_d2(name: str, fcs: List[int]) -> str:
    if name.startswith("backbone.body."):
        return "backbone.bottom_up." + _trunk_to_d2(name[len("backbone.body.") :])
    if name.startswith("backbone.fpn.inner_blocks."):
        return "backbone." + _conv_norm_to_d2(name.split(".", 3)[3], "fpn_lateral", 2)
    if name.startswith("backbone.fpn.layer_blocks."):
        return "backbone." + _conv_norm_to_d2(name.split(".", 3)[3], "fpn_output", 2)
    if name.startswith("backbone."):
        return "backbone." + _trunk_to_d2(name[len("backbone.") :])
    if name.startswith("rpn.head."):
        return "proposal_generator.rpn_head." + name[len("rpn.head.") :]
    if name.startswith("roi_heads.res5."):
        rest = name[len("roi_heads.res5.") :]
        if rest.startswith("norm."):
            return name
        block, inner = rest.split(".", 1)
        return f"roi_heads.res5.{block}." + _block_to_d2(inner)
    if name.startswith("roi_heads.box_head."):
        rest = name[len("roi_heads.box_head.") :]
        if rest.startswith("fc_extra_norm."):
            return name
        index = int(rest.split(".")[0])
        if index in fcs:
            return f"roi_heads.box_head.fc{fcs.index(index) + 1}." + rest.split(".", 1)[1]
        return "roi_heads.box_head." + _conv_norm_to_d2(rest, "conv", 1)
    if name.startswith("roi_heads.mask_head."):
        return "roi_heads.mask_head." + _conv_norm_to_d2(
            name[len("roi_heads.mask_head.") :], "mask_fcn", 1
        )
    for old, new in (
        ("roi_heads.mask_predictor.conv5_mask.", "roi_heads.mask_head.deconv."),
        ("roi_heads.mask_predictor.mask_fcn_logits.", "roi_heads.mask_head.predictor."),
        ("roi_heads.box_predictor.", "roi_heads.box_predictor."),
    ):
        if name.startswith(old):
            return new + name[len(old) :]
    raise KeyError(name)


def _one_from_d2(name: str, num_convs: int) -> str:
    if name.startswith("backbone.bottom_up."):
        return "backbone.body." + _trunk_from_d2(name[len("backbone.bottom_up.") :])
    m = re.match(r"^backbone\.fpn_(lateral|output)(\d)\.(.*)$", name)
    if m is not None:
        blocks = "inner_blocks" if m.group(1) == "lateral" else "layer_blocks"
        part = (
            "1." + m.group(3)[len("norm.") :]
            if m.group(3).startswith("norm.")
            else "0." + m.group(3)
        )
        return f"backbone.fpn.{blocks}.{int(m.group(2)) - 2}.{part}"
    if name.startswith("backbone."):
        return "backbone." + _trunk_from_d2(name[len("backbone.") :])
    if name.startswith("proposal_generator.rpn_head."):
        return "rpn.head." + name[len("proposal_generator.rpn_head.") :]
    if name.startswith("roi_heads.res5."):
        rest = name[len("roi_heads.res5.") :]
        if rest.startswith("norm."):
            return name
        block, inner = rest.split(".", 1)
        return f"roi_heads.res5.{block}." + _block_from_d2(inner)
    if name.startswith("roi_heads.box_head."):
        rest = name[len("roi_heads.box_head.") :]
        m = re.match(r"^fc(\d+)\.(.*)$", rest)
        if m is not None:  # torchvision's head: convs, Flatten, then (Linear, ReLU) pairs
            return f"roi_heads.box_head.{num_convs + 1 + 2 * (int(m.group(1)) - 1)}.{m.group(2)}"
        if rest.startswith("fc_extra_norm."):
            return name
        return "roi_heads.box_head." + _conv_norm_from_d2(rest, "conv", 1)
    for old, new in (
        ("roi_heads.mask_head.deconv.", "roi_heads.mask_predictor.conv5_mask."),
        ("roi_heads.mask_head.predictor.", "roi_heads.mask_predictor.mask_fcn_logits."),
        ("roi_heads.box_predictor.", "roi_heads.box_predictor."),
    ):
        if name.startswith(old):
            return new + name[len(old) :]
    if name.startswith("roi_heads.mask_head."):
        return "roi_heads.mask_head." + _conv_norm_from_d2(
            name[len("roi_heads.mask_head.") :], "mask_fcn", 1
        )
    raise KeyError(name)


def _rename(state_dict: Dict[str, T], rename: Callable[[str], str], what: str) -> Dict[str, T]:
    out = {}
    for key, value in state_dict.items():
        try:
            new = rename(key)
        except (KeyError, ValueError, IndexError):
            raise ValueError(f"{what}: no detectron2 counterpart known for key {key!r}") from None
        if new in out:
            raise ValueError(f"{what}: two keys map to {new!r}")
        out[new] = value
    return out


def to_detectron2(state_dict: Dict[str, T]) -> Dict[str, T]:
    """An insloc detector's state dict (C4 or FPN, or a part of one) under detectron2's names."""
    head = [
        k[len("roi_heads.box_head.") :] for k in state_dict if k.startswith("roi_heads.box_head.")
    ]
    fcs = _box_head_fcs(head)
    return _rename(state_dict, lambda k: _one_to_d2(k, fcs), "to detectron2")


def from_detectron2(state_dict: Dict[str, T]) -> Dict[str, T]:
    """A detectron2 R-C4 / R-FPN state dict under the insloc detector's names (the inverse of
    :func:`to_detectron2`)."""
    convs = {
        re.match(r"^roi_heads\.box_head\.conv(\d+)\.", k).group(1)
        for k in state_dict
        if re.match(r"^roi_heads\.box_head\.conv(\d+)\.", k)
    }
    return _rename(state_dict, lambda k: _one_from_d2(k, len(convs)), "from detectron2")
