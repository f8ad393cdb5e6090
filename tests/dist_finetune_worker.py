"""Run under torchrun by test_train_net.py: a short fine-tuning, then each rank saves its weights.

torchrun --nproc_per_node 2 tests/dist_finetune_worker.py OUT_DIR [KEY VALUE ...]
"""

import os
import sys

import torch

from insloc.config import load_config
from insloc.engine.finetune import DetectionTrainer
from insloc.engine.launch import launch
from insloc.utils import comm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(out_dir, opts):
    cfg = load_config(
        os.path.join(ROOT, "configs/quick/det_tiny_FPN.yaml"),
        ["OUTPUT_DIR", os.path.join(out_dir, "run"), "MODEL.DEVICE", "cpu", *opts],
    )
    if comm.is_main_process():
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    comm.synchronize()
    trainer = DetectionTrainer(cfg)
    history = trainer.train()
    sync_bn = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in trainer.model.modules())
    torch.save(
        {"model": trainer.model.state_dict(), "sync_bn_layers": sync_bn, "history": history},
        os.path.join(out_dir, f"rank{comm.get_rank()}.pth"),
    )


if __name__ == "__main__":
    launch(main, sys.argv[1], sys.argv[2:], device="cpu")
