"""The run header: code version, library versions and hardware, logged before training starts."""

import os
import platform
import subprocess

import cv2
import numpy as np
import torch
import torchvision

from ..version import __version__


def git_sha() -> str:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        out = subprocess.run(
            ["git", "-C", root, "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return out + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def collect_env_info(world_size: int = 1) -> str:
    rows = [
        ("insloc", f"{__version__} (git {git_sha()})"),
        ("python", platform.python_version()),
        ("torch", torch.__version__),
        ("torchvision", torchvision.__version__),
        ("numpy", np.__version__),
        ("opencv", cv2.__version__),
        ("platform", platform.platform()),
        ("cpu threads", str(torch.get_num_threads())),
        ("cuda", torch.version.cuda if torch.cuda.is_available() else "not available"),
        ("world size", str(world_size)),
    ]
    if torch.cuda.is_available():
        rows.append(("gpu", torch.cuda.get_device_name(0)))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)
