import logging
import math

import pytest
import torch
import torch.nn.functional as F

from insloc.config import get_cfg
from insloc.modeling import GlobalEncoder, InsLoc, MoCo, build_model
from insloc.modeling.backbone import build_resnet
from insloc.modeling.heads import projection
from insloc.modeling.norm import SplitBatchNorm

N, K, DIM, T = 4, 64, 16, 0.2


def tiny_cfg(arch):
    cfg = get_cfg()
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.WIDTH = 8
    cfg.MODEL.FPN.OUT_CHANNELS = 16
    cfg.MODEL.ROI_BOX_HEAD.CONV_DIM = 16
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 32
    cfg.MODEL.MOCO.DIM = DIM
    cfg.MODEL.MOCO.MLP_DIM = 32
    cfg.MODEL.MOCO.QUEUE_SIZE = K
    cfg.MODEL.MOCO.SPLIT_BN_GROUPS = 2
    cfg.SOLVER.IMS_PER_BATCH = N
    return set_arch(cfg, arch)


def set_arch(cfg, arch):
    """The keys that turn the default InsLoc R-FPN config into InsLoc R-C4 or MoCo v2."""
    if arch == "c4":
        cfg.MODEL.BACKBONE.NAME = "resnet_c4"
        cfg.MODEL.ROI_BOX_HEAD.IN_FEATURES = ["res4"]
        cfg.MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION = 14
        cfg.INPUT.BOX_AUG.QUERY_FEATURES = ["res4"]
    elif arch in ("moco", "resnet"):
        cfg.MODEL.META_ARCHITECTURE = "MoCo"
        cfg.MODEL.BACKBONE.NAME = "resnet"
    return cfg


def make_batch(num_levels, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.randint(0, 24, (2, N, num_levels, 2), generator=g).float()
    wh = torch.randint(16, 40, (2, N, num_levels, 2), generator=g).float()
    boxes = torch.cat([xy, xy + wh], dim=-1)  # 2 x N x L x 4
    return {
        "q": torch.randint(0, 256, (N, 3, 64, 64), dtype=torch.uint8, generator=g),
        "k": torch.randint(0, 256, (N, 3, 64, 64), dtype=torch.uint8, generator=g),
        "q_boxes": boxes[0],
        "k_boxes": boxes[1],
        "index": torch.arange(N),  # extra keys are ignored
    }


ARCHS = ["fpn", "c4", "moco"]


@pytest.mark.parametrize("arch", ARCHS)
def test_loss_near_log_k_plus_one_at_initialisation(arch):
    # A random network maps all inputs to nearby embeddings, so once the queue holds its keys
    # (instead of the random unit vectors it starts with) the positive is no easier to find than
    # any of the K negatives: the loss is about log(K + 1).
    torch.manual_seed(0)
    model = build_model(tiny_cfg(arch)).train()
    with torch.no_grad():
        for i in range(K // N):
            model(make_batch(len(model.feature_names), seed=100 + i))
        out = model(make_batch(len(model.feature_names)))
    for n in model.feature_names:
        assert abs(out[f"loss_{n}"].item() - math.log(K + 1)) < 0.5, n


@pytest.mark.parametrize("arch", ARCHS)
def test_one_step(arch):
    torch.manual_seed(0)
    cfg = tiny_cfg(arch)
    cfg.MODEL.MOCO.MASK_EMPTY_QUEUE = False  # the official random queue: negatives from step 0
    model = build_model(cfg).train()
    assert isinstance(model, MoCo) and isinstance(model, InsLoc) == (arch != "moco")
    levels = model.feature_names
    assert levels == {"fpn": ["p2", "p3", "p4", "p5"], "c4": ["res4"], "moco": ["global"]}[arch]
    # One process + SHUFFLE_BN + BN: both encoders use split BN.
    for enc in (model.encoder_q, model.encoder_k):
        splits = [m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert splits and all(type(m) is SplitBatchNorm and m.num_splits == 2 for m in splits)

    q_before = [p.detach().clone() for p in model.encoder_q.parameters()]
    k_before = [p.detach().clone() for p in model.encoder_k.parameters()]
    queues_before = {n: getattr(model, f"queue_{n}").clone() for n in levels}
    out = model(make_batch(len(levels)))

    assert set(out) == {f"{p}_{n}" for n in levels for p in ("loss", "acc")}
    for n in levels:
        loss = out[f"loss_{n}"]
        assert torch.isfinite(loss) and loss.requires_grad
        assert not out[f"acc_{n}"].requires_grad and 0 <= out[f"acc_{n}"].item() <= 1
    # The queue pointer advances by the batch; only the first N columns were replaced.
    assert model.queue_ptr.item() == N
    for n in levels:
        queue = getattr(model, f"queue_{n}")
        torch.testing.assert_close(queue[:, N:], queues_before[n][:, N:])
        assert not torch.allclose(queue[:, :N], queues_before[n][:, :N])
        torch.testing.assert_close(queue[:, :N].norm(dim=0), torch.ones(N))
    # Key encoder: k = m * k + (1 - m) * q, for every parameter.
    m = model.momentum
    for pk, k0, q0 in zip(model.encoder_k.parameters(), k_before, q_before):
        torch.testing.assert_close(pk, m * k0 + (1 - m) * q0)

    sum(v for k, v in out.items() if k.startswith("loss")).backward()
    for p in model.encoder_k.parameters():
        assert not p.requires_grad and p.grad is None
    for name, p in model.encoder_q.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    # The key encoder's BN statistics evolve by its own forward.
    bn_k = next(m for m in model.encoder_k.modules() if isinstance(m, SplitBatchNorm))
    assert int(bn_k.num_batches_tracked) == 1


def test_queue_pointer_wraps_and_rejects_bad_batch():
    torch.manual_seed(0)
    model = build_model(tiny_cfg("moco")).train()
    batch = make_batch(1)
    with torch.no_grad():
        for _ in range(K // N):
            model(batch)
    assert model.queue_ptr.item() == 0
    bad = dict(batch, q=torch.cat([batch["q"], batch["q"][:2]]))  # 6 does not divide K = 64
    with pytest.raises(ValueError, match="MODEL.MOCO.QUEUE_SIZE.*SOLVER.IMS_PER_BATCH"):
        model(bad)


def test_config_checks_queue_and_split_groups():
    cfg = tiny_cfg("fpn")
    cfg.SOLVER.IMS_PER_BATCH = 48
    with pytest.raises(ValueError, match="MODEL.MOCO.QUEUE_SIZE.*SOLVER.IMS_PER_BATCH"):
        build_model(cfg)
    cfg = tiny_cfg("fpn")
    cfg.MODEL.MOCO.SPLIT_BN_GROUPS = 8
    with pytest.raises(ValueError, match="MODEL.MOCO.SPLIT_BN_GROUPS"):
        build_model(cfg)


def test_loss_matches_infonce_reference():
    # Built without a config; no shuffle, so the key encoder (equal to the query encoder at step 0)
    # sees the same batch statistics and the positive logit is exactly 1 / T.
    torch.manual_seed(0)
    encoder = GlobalEncoder(build_resnet(18, 8, "BN"), projection(64, 0, DIM))
    model = MoCo(
        encoder=encoder,
        feature_names=["global"],
        dim=DIM,
        queue_size=8,
        shuffle_bn=False,
        mask_empty_queue=False,
    )
    model.train()
    images = torch.randint(0, 256, (N, 3, 32, 32), dtype=torch.uint8)
    queue = model.queue_global.clone()
    q = model.encode(images)["global"]  # N x DIM, train-mode statistics as in forward
    out = model({"q": images, "k": images})
    logits = torch.cat([torch.ones(N, 1), q @ queue], dim=1) / model.temperature
    expected = F.cross_entropy(logits, torch.zeros(N, dtype=torch.long))
    torch.testing.assert_close(out["loss_global"], expected, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(model.queue_global[:, :N], q.t(), rtol=1e-4, atol=1e-4)


def test_empty_queue_slots_are_not_negatives():
    torch.manual_seed(0)
    encoder = GlobalEncoder(build_resnet(18, 8, "BN"), projection(64, 0, DIM))
    model = MoCo(
        encoder=encoder, feature_names=["global"], dim=DIM, queue_size=3 * N, shuffle_bn=False
    ).train()
    images = [torch.randint(0, 256, (N, 3, 32, 32), dtype=torch.uint8) for _ in range(2)]
    # Step 1: no key written yet, so the positive is the only candidate.
    out = model({"q": images[0], "k": images[0]})
    assert out["loss_global"].item() == 0.0 and model.queue_len.item() == N
    # Step 2: exactly the N keys of step 1 are negatives.
    queue = model.queue_global[:, :N].clone()
    q = model.encode(images[1])["global"]
    out = model({"q": images[1], "k": images[1]})
    logits = torch.cat([torch.ones(N, 1), q @ queue], dim=1) / model.temperature
    expected = F.cross_entropy(logits, torch.zeros(N, dtype=torch.long))
    torch.testing.assert_close(out["loss_global"], expected, rtol=1e-4, atol=1e-4)
    # The count saturates at K once the queue is full.
    with torch.no_grad():
        for _ in range(3):
            model({"q": images[0], "k": images[0]})
    assert model.queue_len.item() == 3 * N


def test_shuffle_then_unshuffle_restores_order():
    torch.manual_seed(0)
    model = build_model(tiny_cfg("moco"))
    images = torch.arange(N).view(N, 1, 1, 1).expand(N, 3, 2, 2).to(torch.uint8)
    boxes = torch.arange(N, dtype=torch.float32).view(N, 1, 1).expand(N, 2, 4)
    shuffled, shuffled_boxes, perm = model._batch_shuffle(images, boxes)
    assert sorted(perm.tolist()) == list(range(N))
    assert shuffled[:, 0, 0, 0].tolist() == perm.tolist()
    assert shuffled_boxes[:, 0, 0].tolist() == perm.tolist()
    keys = shuffled[:, 0, 0, :1].float()  # N x 1: the sample index, in shuffled order
    assert model._gather_keys(keys, perm)[:, 0].tolist() == list(range(N))


@pytest.mark.parametrize("arch", ["fpn", "moco"])
def test_encode_gives_normalised_embeddings(arch):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(arch)).eval()
    batch = make_batch(len(model.feature_names))
    emb = model.encode(batch["q"][:3], batch["q_boxes"][:3] if arch == "fpn" else None)
    assert list(emb) == model.feature_names
    for v in emb.values():
        assert v.shape == (3, DIM) and not v.requires_grad
        torch.testing.assert_close(v.norm(dim=1), torch.ones(3))


def test_insloc_without_boxes_is_a_clear_error():
    model = build_model(tiny_cfg("fpn")).train()
    batch = make_batch(4)
    with pytest.raises(ValueError, match="q_boxes"):
        model.encode(batch["q"])


def _two_process_step(rank, port):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        cfg = tiny_cfg("fpn")
        cfg.SOLVER.IMS_PER_BATCH = 2 * N
        model = build_model(cfg).train()
        assert not any(isinstance(m, SplitBatchNorm) for m in model.modules())
        # Images labelled by their global index; each rank's RNG differs, rank 0's permutation wins.
        images = (torch.arange(N) + rank * N).view(N, 1, 1, 1).expand(N, 3, 2, 2).to(torch.uint8)
        torch.manual_seed(rank)
        shuffled, _, perm = model._batch_shuffle(images, None)
        perms = [torch.empty_like(perm) for _ in range(2)]
        dist.all_gather(perms, perm)
        assert torch.equal(perms[0], perms[1])
        assert shuffled[:, 0, 0, 0].tolist() == perm.view(2, N)[rank].tolist()
        keys = model._gather_keys(shuffled[:, 0, 0, :1].float(), perm)  # 2N x 1, unshuffled
        assert keys[:, 0].tolist() == list(range(2 * N))
        out = model(make_batch(4, seed=rank))
        assert all(torch.isfinite(v) for v in out.values())
        queue = model.queue_p2.clone()
        queues = [torch.empty_like(queue) for _ in range(2)]
        dist.all_gather(queues, queue)
        assert torch.equal(queues[0], queues[1]) and model.queue_ptr.item() == 2 * N
    finally:
        dist.destroy_process_group()


def test_keys_shuffled_across_two_processes():
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_two_process_step, args=(port,), nprocs=2)


@pytest.mark.parametrize("norm", ["SyncBN", "GN"])
def test_other_norms_train_in_one_process(norm):
    torch.manual_seed(0)
    cfg = tiny_cfg("fpn")
    cfg.MODEL.RESNETS.NORM = cfg.MODEL.FPN.NORM = cfg.MODEL.ROI_BOX_HEAD.NORM = norm
    cfg.MODEL.RESNETS.WIDTH = cfg.MODEL.FPN.OUT_CHANNELS = cfg.MODEL.ROI_BOX_HEAD.CONV_DIM = 32
    model = build_model(cfg).train()
    kinds = {type(m) for m in model.modules()}
    expected = torch.nn.SyncBatchNorm if norm == "SyncBN" else torch.nn.GroupNorm
    assert expected in kinds and SplitBatchNorm not in kinds and torch.nn.BatchNorm2d not in kinds
    out = model(make_batch(4))
    sum(v for k, v in out.items() if k.startswith("loss")).backward()
    assert all(torch.isfinite(v) for v in out.values())
    assert all(p.grad is not None for p in model.encoder_q.parameters())


def test_official_recipe_splits_bn_from_the_batch_and_warns_on_tiny_batches(caplog):
    from insloc.config import load_config
    from insloc.modeling.moco import moco_kwargs

    recipe = "configs/pretrain/insloc_R50_FPN_200ep.yaml"
    with caplog.at_level(logging.INFO, logger="insloc.modeling.moco"):
        assert (
            moco_kwargs(load_config(recipe, ["SOLVER.IMS_PER_BATCH", 64]))["split_bn_groups"] == 2
        )
    assert "2 groups of 32 samples" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="insloc.modeling.moco"):
        assert moco_kwargs(load_config(recipe, ["SOLVER.IMS_PER_BATCH", 2]))["split_bn_groups"] == 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "groups of 1 sample," in warnings[0]
    # A batch of 2 trains (a tiny network here; the recipe's groups are chosen the same way).
    cfg = tiny_cfg("fpn")
    cfg.MODEL.MOCO.SPLIT_BN_GROUPS = 0
    cfg.SOLVER.IMS_PER_BATCH = 2
    torch.manual_seed(0)
    model = build_model(cfg).train()
    batch = {k: v[:2] for k, v in make_batch(4).items()}
    out = model(batch)
    assert all(torch.isfinite(v) for v in out.values())
    assert {m.num_splits for m in model.modules() if isinstance(m, SplitBatchNorm)} == {2}


def test_fpn_head_fcs_and_projection_have_the_official_init():
    # Official InsLoc head: fcs xavier-uniform with zero bias, projection N(0, 0.01) zero bias.
    torch.manual_seed(0)
    model = build_model(tiny_cfg("fpn"))
    for encoder in (model.encoder_q, model.encoder_k):
        fcs = [m for m in encoder.box_head.modules() if isinstance(m, torch.nn.Linear)]
        assert len(fcs) == 2
        for fc in fcs:
            bound = math.sqrt(6 / (fc.in_features + fc.out_features))
            w = fc.weight.detach()
            assert w.abs().max() <= bound and w.abs().max() > 0.95 * bound
            assert abs(w.std().item() - bound / math.sqrt(3)) < 0.05 * bound
            assert not fc.bias.detach().any()
        proj = encoder.proj
        assert abs(proj.weight.detach().std().item() - 0.01) < 0.0015
        assert not proj.bias.detach().any()
