"""What a config names: methods (``MODEL.META_ARCHITECTURE``), backbones (``MODEL.BACKBONE.NAME``).

The module that implements a method or a backbone registers it here, in one place: a method with
:func:`register_method` (its model, its data pipeline, its config validation, the keys a resume
must agree on, its task), a backbone with :func:`register_backbone`. Everything else looks them up:
:func:`~insloc.config.load_config` checks a config's names and runs the method's validation, the
builders (``build_model``, ``build_pretrain_dataset``, ``build_backbone``), the trainers' resume
check and the tools' task check read the entries. ``import insloc`` registers insloc's own
methods, backbones and dataset names; ``import dense_match`` registers "Dense".

A registry lives at the bottom of the stack and its entries come from above it (the config
layer never imports a model): docs/layout.md has the recipe.
"""

from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from fvcore.common.registry import Registry

__all__ = [
    "BACKBONE_REGISTRY",
    "CONFIG_CHECKS",
    "METHODS",
    "TASKS",
    "Method",
    "backbone_arch_keys",
    "backbone_kind",
    "get_method",
    "methods_of_task",
    "register_backbone",
    "register_config_check",
    "register_method",
    "task_of",
]

# Which tool runs a method's configs, and how its checkpoints are named in messages.
TASKS = ("pretraining", "pretext", "detection", "dense matching")


@dataclass(frozen=True)
class Method:
    """A registered ``MODEL.META_ARCHITECTURE``.

    Attributes:
        name: the config's name for it.
        task: one of :data:`TASKS`.
        model: a class with ``from_config(cfg)`` (``build_model``); None when a package builds it
            itself (dense_match).
        dataset: the pretraining data pipeline, a class with ``from_config(cfg, source)`` whose
            samples ``model`` trains on (``build_pretrain_dataset``); None for methods trained on
            labelled data.
        validate: ``validate(cfg, fail)`` cross-checks of its keys, calling ``fail(key,
            expected)`` on the first bad one (``load_config`` runs it).
        arch_keys: config keys that fix its weights' shapes or meaning: a ``--resume`` with other
            values is refused (the backbone's own keys are added, see :func:`register_backbone`).
        backbones: the ``MODEL.BACKBONE.NAME`` values it takes (empty: see ``backbone_kind``).
        backbone_kind: with no ``backbones``, any registered backbone of this kind ("trunk": a
            classification trunk with named taps); both empty: any registered backbone.
    """

    name: str
    task: str
    model: Optional[type] = None
    dataset: Optional[type] = None
    validate: Optional[Callable] = None
    arch_keys: Tuple[str, ...] = ()
    backbones: Tuple[str, ...] = ()
    backbone_kind: str = ""


METHODS: Dict[str, Method] = {}

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """``MODEL.BACKBONE.NAME`` -> a function ``cfg -> nn.Module``; the
contract is in :mod:`insloc.modeling.backbone.build`."""


def register_method(
    name: str,
    *,
    task: str,
    model: Optional[type] = None,
    dataset: Optional[type] = None,
    validate: Optional[Callable] = None,
    arch_keys: Tuple[str, ...] = (),
    backbones: Tuple[str, ...] = (),
    backbone_kind: str = "",
) -> Method:
    """Register a method (the arguments are the attributes of :class:`Method`); one call, in the
    module that implements it.

    Raises:
        ValueError: an unknown task, or a name registered twice.
    """
    if task not in TASKS:
        raise ValueError(f"register_method({name!r}): task {task!r}, expected one of {TASKS}")
    if name in METHODS:
        raise ValueError(f"MODEL.META_ARCHITECTURE {name!r} is registered already")
    METHODS[name] = Method(
        name, task, model, dataset, validate, tuple(arch_keys), tuple(backbones), backbone_kind
    )
    return METHODS[name]


def get_method(name: str) -> Method:
    """The entry of ``name``.

    Raises:
        ValueError: ``name`` is not registered (the message lists the registered ones).
    """
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"MODEL.META_ARCHITECTURE = {name!r}: expected a registered method, one of "
            f"{', '.join(repr(m) for m in METHODS)} (import the package that registers it)"
        ) from None


def task_of(meta_architecture: str) -> str:
    """The task of a ``MODEL.META_ARCHITECTURE``, or "unknown" when it is not registered."""
    method = METHODS.get(meta_architecture)
    return method.task if method else "unknown"


def methods_of_task(*tasks: str) -> list:
    """The registered names whose task is one of ``tasks``, in registration order."""
    return [name for name, m in METHODS.items() if m.task in tasks]


def register_backbone(kind: str = "", arch_keys: Tuple[str, ...] = ()):
    """Decorator registering a backbone builder ``fn(cfg) -> nn.Module`` under its function name.

    Args:
        kind: what methods can ask for ("trunk": a classification trunk with named taps,
            :class:`~insloc.modeling.backbone.taps.TappedTrunk`; "" for the others).
        arch_keys: the config keys that fix its weights' shapes or meaning (a ``--resume`` with
            other values is refused).
    """

    def decorator(fn):
        fn.kind, fn.arch_keys = kind, tuple(arch_keys)
        BACKBONE_REGISTRY.register(fn)
        return fn

    return decorator


# Checks of keys whose valid values are known above the config layer: ``check(cfg, fail)``, run
# by load_config after its own (the data catalog registers the check of dataset names).
CONFIG_CHECKS = []


def register_config_check(check: Callable) -> Callable:
    """Run ``check(cfg, fail)`` on every config that loads; returns ``check``."""
    CONFIG_CHECKS.append(check)
    return check


def backbone_kind(name: str) -> str:
    """The kind a backbone was registered with ("" when none, or not registered)."""
    return getattr(BACKBONE_REGISTRY.get(name), "kind", "") if name in BACKBONE_REGISTRY else ""


def backbone_arch_keys(name: str) -> tuple:
    """The arch keys a backbone was registered with (() when none, or not registered)."""
    if name not in BACKBONE_REGISTRY:
        return ()
    return tuple(getattr(BACKBONE_REGISTRY.get(name), "arch_keys", ()))
