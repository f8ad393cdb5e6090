"""The import graph runs one way (docs/layout.md): no module imports a layer above its own, and no
modules import each other in a circle. Read from the source with ``ast``, lazy imports included."""

import ast
import os

from .conftest import ROOT

# Bottom to top. A module may import its own layer and the layers below it. Registries live low
# (insloc.config.registry) and are filled from above, so nothing below needs to import upward.
LAYERS = [
    ("insloc.version", "insloc.utils"),
    ("insloc.config",),
    ("insloc.data",),
    ("insloc.modeling",),  # a method's module registers its data pipeline, so data is below
    ("insloc.transfer",),  # the one weights reader, and conversions
    ("insloc.evaluation",),
    ("insloc.engine",),
    ("dense_match",),
    ("insloc",),  # the package itself: importing it registers insloc's methods and backbones
]
PACKAGES = ("insloc", "dense_match")


def _modules() -> dict:
    """{dotted module name: path} of the library's source files."""
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for name in files:
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    dotted = os.path.relpath(path, ROOT)[: -len(".py")].replace(os.sep, ".")
                    found[dotted.removesuffix(".__init__")] = path
    return found


def _imports(name: str, path: str, modules: dict) -> set:
    """The library modules ``name`` imports (``from pkg import sub`` counts as ``pkg.sub``)."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            candidates = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            candidates = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for target in candidates:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
    return targets


def _layer(name: str) -> int:
    """The index in LAYERS of the most specific prefix of ``name``."""
    best, index = "", None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            matches = name == prefix or name.startswith(prefix + ".")
            if matches and len(prefix) > len(best):
                best, index = prefix, i
    assert index is not None, f"{name} is in no layer of LAYERS"
    return index


def _graph() -> dict:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{name} (layer {_layer(name)}) imports {target} (layer {_layer(target)})"
        for name, targets in _graph().items()
        for target in sorted(targets)
        if _layer(target) > _layer(name)
    ]
    assert upward == []


def test_no_import_circles():
    graph = _graph()
    state, cycles = {}, []  # state: 1 on the current path, 2 done

    def visit(name, path):
        state[name] = 1
        for target in sorted(graph[name]):
            # a package's __init__ re-exports its own modules: an edge into the package from one of
            # its modules is the package's namespace, not a circle of code
            if name.startswith(target + "."):
                continue
            if state.get(target) == 1:
                cycles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_the_layers_name_every_package():
    """A new package must be placed in LAYERS (and in docs/layout.md's graph)."""
    for name in _modules():
        _layer(name)
