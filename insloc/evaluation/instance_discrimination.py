"""Held-out instance discrimination: can the query encoder tell each sample's two views apart?

Each query view of a fixed set of held-out samples is matched against the key views of all samples
of the set; the accuracy is the fraction whose nearest key (cosine similarity) is its own. Chance is
1 / number of samples. It needs no labels, so it tracks pretraining on any data.
"""

import torch

# Held-out scenes are generated with a seed disjoint from every training seed people use.
HELDOUT_SEED_OFFSET = 1_000_003


def build_heldout_batch(cfg, num_samples: int) -> dict:
    """``num_samples`` synthetic samples made by the training pipeline of ``cfg``, never trained on.

    Returns:
        a collated batch: "q", "k" (M x 3 x H x W uint8) and, for InsLoc, "q_boxes", "k_boxes".
    """
    from insloc.data import SyntheticSource, build_pretrain_dataset, collate_samples

    source = SyntheticSource(
        num_images=num_samples,
        image_size=cfg.DATASETS.SYNTHETIC.IMAGE_SIZE,
        seed=cfg.DATASETS.SYNTHETIC.SEED + HELDOUT_SEED_OFFSET,
    )
    dataset = build_pretrain_dataset(cfg, source=source)
    return collate_samples(dataset.__getitems__([(0, i) for i in range(num_samples)]))


@torch.no_grad()
def instance_discrimination_accuracy(model, batch: dict, device, chunk: int = 64) -> dict:
    """Top-1 accuracy of matching each query view to its own key view, per pooled level.

    Args:
        model: a MoCo/InsLoc model with ``encode(images, boxes=None) -> {level: M x C}``.
        batch: from :func:`build_heldout_batch`.
    Returns:
        {level: accuracy in [0, 1]} plus "mean" over levels when there are several.
    """
    was_training = model.training
    model.eval()
    try:
        q = _encode_all(model, batch["q"], batch.get("q_boxes"), device, chunk)  # level: M x C
        k = _encode_all(model, batch["k"], batch.get("k_boxes"), device, chunk)
    finally:
        model.train(was_training)
    result = {}
    for level in q:
        sim = q[level] @ k[level].t()  # M x M
        target = torch.arange(sim.shape[0])
        result[level] = (sim.argmax(dim=1) == target).float().mean().item()
    if len(result) > 1:
        result["mean"] = sum(result.values()) / len(result)
    return result


def _encode_all(model, images, boxes, device, chunk) -> dict:
    parts = {}
    for start in range(0, images.shape[0], chunk):
        sl = slice(start, start + chunk)
        out = model.encode(images[sl].to(device), None if boxes is None else boxes[sl].to(device))
        for level, emb in out.items():
            parts.setdefault(level, []).append(emb.float().cpu())
    return {level: torch.cat(chunks) for level, chunks in parts.items()}
