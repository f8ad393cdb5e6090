import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_tool(*args, timeout=300, env=None, check=False):
    """Run a tools/ script in a fresh interpreter; returns the CompletedProcess.

    The tool imports this checkout's packages (ROOT first on PYTHONPATH), whatever is installed.
    """
    path = os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH", "")) if p)
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=path, **(env or {}))
    proc = subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def tool():
    return run_tool


def load_script(path, name=None):
    """The module of the script at ``path`` (relative to the repository root), imported in this
    process (for its ``main``: a subprocess costs seconds of imports)."""
    name = name or os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_path(name):
    return os.path.join(ROOT, "configs", name)
