"""Run under torchrun by test_distributed.py: a short pretraining, then each rank saves its state.

torchrun --nproc_per_node 2 tests/dist_worker.py OUT_DIR [KEY VALUE ...]
"""

import os
import sys

import torch

from insloc.config import load_config
from insloc.engine.launch import launch
from insloc.engine.pretrain import PretrainTrainer
from insloc.utils import comm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(out_dir, opts):
    cfg = load_config(
        os.path.join(ROOT, "configs/quick/insloc_tiny_FPN.yaml"),
        ["OUTPUT_DIR", os.path.join(out_dir, "run"), "MODEL.DEVICE", "cpu", *opts],
    )
    if comm.is_main_process():
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    comm.synchronize()
    trainer = PretrainTrainer(cfg)
    trainer.train()
    model, rank = trainer.model, comm.get_rank()

    # The key shuffle on labelled samples: sample ids are (rank * n + position).
    n = cfg.SOLVER.IMS_PER_BATCH // comm.get_world_size()
    ids = (rank * n + torch.arange(n)).view(n, 1, 1, 1).expand(n, 3, 2, 2).contiguous()
    shuffled, _, perm = model._batch_shuffle(ids, None)
    keys = shuffled[:, 0, 0, 0].float().view(n, 1)  # a "key" that is the sample id
    unshuffled = model._gather_keys(keys, perm).view(-1)
    torch.save(
        {
            "model": model.state_dict(),
            "shuffled_ids": shuffled[:, 0, 0, 0].clone(),
            "unshuffled_ids": unshuffled,
            "world_size": comm.get_world_size(),
            "bn_types": sorted(
                {type(m).__name__ for m in model.modules() if "Norm" in type(m).__name__}
            ),
        },
        os.path.join(out_dir, f"rank{rank}.pth"),
    )


if __name__ == "__main__":
    launch(main, sys.argv[1], sys.argv[2:], device="cpu")
