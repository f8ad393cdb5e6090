"""Keypoint-transfer evaluation of a dense model on a pair dataset, under a named PCK protocol."""

import logging
import time

import cv2
import numpy as np
import torch
from scipy.stats import rankdata

from insloc.data import BadImageError

from .heads.sampling import sample_at
from .matching import transfer_keypoints
from .pck import ALPHAS, DEFAULT_PROTOCOL, PCKMeter, norm_size, visible

__all__ = ["evaluate_matching", "resolve_protocol", "roc_auc", "match_pair"]

logger = logging.getLogger("insloc.dense_match")


def resolve_protocol(cfg, dataset_name: str) -> dict:
    """MATCHING.PCK_* with "default" replaced by the dataset's (``pck.DEFAULT_PROTOCOL``)."""
    default = DEFAULT_PROTOCOL[dataset_name]
    m = cfg.MATCHING
    out = {
        "norm": m.PCK_NORM if m.PCK_NORM != "default" else default["norm"],
        "resize": m.PCK_RESIZE if m.PCK_RESIZE != "default" else default["resize"],
        "average": m.PCK_AVERAGE if m.PCK_AVERAGE != "default" else default["average"],
    }
    return out


def _to_resized(points: np.ndarray, size, side: int) -> np.ndarray:
    """Pixel-centre coordinates of an h x w image -> those of its side x side resize."""
    h, w = size
    return (points + 0.5) * np.array([side / w, side / h]) - 0.5


def _from_resized(points: np.ndarray, size, side: int) -> np.ndarray:
    h, w = size
    return (points + 0.5) * np.array([w / side, h / side]) - 0.5


def _tensor(image: np.ndarray, side: int) -> torch.Tensor:
    resized = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
    return torch.from_numpy(np.ascontiguousarray(resized.transpose(2, 0, 1)))  # 3 x S x S uint8


@torch.no_grad()
def match_pair(model, pair: dict, side: int, device, method="nn", temperature=0.02, sigma=False):
    """Transfer one pair's source keypoints.

    Returns:
        dict: pred (K x 2, original target pixels), pred_resized (K x 2), src_valid (K bool),
        sigma_at_pred (K, the pair's sigma: the mean of the source sigma at each keypoint and the
        target sigma at its prediction; NaN without a sigma head),
        trg_sigma (h x w numpy or None).
    """
    src, trg = pair["src_image"], pair["trg_image"]
    out = model.describe(torch.stack([_tensor(src, side), _tensor(trg, side)]).to(device))
    src_valid = visible(pair["src_kps"], src.shape[:2])
    kps = np.where(src_valid[:, None], pair["src_kps"], 0.0)  # excluded points: any position
    kps = torch.from_numpy(_to_resized(kps, src.shape[:2], side)).float().to(device)
    trg_sigma = out["sigma"][1] if "sigma" in out and sigma else None
    pred = transfer_keypoints(
        out["desc"][0], out["desc"][1], kps, (side, side), (side, side), method, temperature,
        trg_sigma,
    )  # fmt: skip
    sig = np.full(len(kps), np.nan)
    if "sigma" in out:
        # The pair's sigma, as in training: the mean of the source keypoint's and the prediction's.
        at = torch.nan_to_num(pred, nan=0.0)[None]
        sig_trg = sample_at(out["sigma"][1:2], at, (side, side))[0, :, 0]  # K
        sig_src = sample_at(out["sigma"][0:1], kps[None], (side, side))[0, :, 0]  # K
        sig = ((sig_src + sig_trg) / 2).cpu().numpy()
    pred = pred.cpu().numpy().astype(np.float64)
    return {
        "pred": _from_resized(pred, trg.shape[:2], side),
        "pred_resized": pred,
        "src_valid": src_valid,
        "sigma_at_pred": sig,
        "trg_sigma": out["sigma"][1, 0].cpu().numpy() if "sigma" in out else None,
    }


def evaluate_matching(
    model,
    dataset,
    protocol: dict,
    side: int = 224,
    device="cpu",
    method: str = "nn",
    temperature: float = 0.02,
    sigma_weighting: bool = False,
    max_pairs: int = 0,
    alphas=ALPHAS,
) -> dict:
    """PCK of ``model`` on ``dataset``.

    Args:
        protocol: {"norm", "resize", "average"} (``resolve_protocol``).
        side: DENSE.INPUT_SIZE; max_pairs: 0 = all.
    Returns:
        the PCK summary (``PCKMeter.summary``: ``pairs`` counts the pairs evaluated) plus
        dataset, norm, resize, average, method, pairs_per_sec, pairs_skipped (pairs with an
        unreadable image) and sigma_auc (ROC AUC of -sigma_at_pred for correct@0.1, or None).
    """
    model.eval()
    meter = PCKMeter(alphas, protocol["average"])
    by_difficulty = {}  # (flag, value) -> PCKMeter, for SPair-71k's difficulty flags
    n = len(dataset) if not max_pairs else min(max_pairs, len(dataset))
    bad, sig, ok = 0, [], []
    start = time.perf_counter()
    for i in range(n):
        try:
            pair = dataset[i]
        except BadImageError as e:
            logger.warning("skipping pair %d: %s", i, e)
            bad += 1
            continue
        res = match_pair(model, pair, side, device, method, temperature, sigma_weighting)
        trg_hw = pair["trg_image"].shape[:2]
        gt, pred, bbox, size = pair["trg_kps"], res["pred"], pair.get("trg_bbox"), trg_hw
        if protocol["resize"] == "resized":
            gt, pred, size = _to_resized(gt, trg_hw, side), res["pred_resized"], (side, side)
            if bbox is not None:
                corners = _to_resized(np.reshape(bbox, (2, 2)), trg_hw, side)
                bbox = corners.ravel().tolist()
        length = norm_size(protocol["norm"], gt, size, bbox)
        correct = meter.add(pred, gt, length, size, pair["category"], res["src_valid"])
        for flag, value in pair.get("difficulty", {}).items():
            m = by_difficulty.setdefault((flag, value), PCKMeter(alphas, protocol["average"]))
            m.add(pred, gt, length, size, pair["category"], res["src_valid"])
        keep = visible(gt, size) & res["src_valid"]
        sig.append(res["sigma_at_pred"][keep])
        ok.append(correct[keep, list(alphas).index(0.1) if 0.1 in alphas else 0])
    elapsed = time.perf_counter() - start
    out = {"dataset": getattr(dataset, "name", "")}
    out.update(meter.summary())
    out.update(protocol)
    out["method"] = method
    if by_difficulty:
        out["per_difficulty"] = {
            f"{flag}={value}": {k: v for k, v in m.summary().items() if k.startswith("pck@")}
            for (flag, value), m in sorted(by_difficulty.items())
        }
    out["pairs_per_sec"] = (n - bad) / elapsed if elapsed > 0 else float("nan")
    out["pairs_skipped"] = bad
    sig = np.concatenate(sig) if sig else np.zeros(0)
    ok = np.concatenate(ok) if ok else np.zeros(0, bool)
    out["sigma_auc"] = roc_auc(-sig, ok) if len(sig) and np.isfinite(sig).all() else None
    return out


def roc_auc(scores: np.ndarray, labels: np.ndarray):
    """Probability that a random positive scores above a random negative (ties count half);
    None when one class is empty."""
    labels = np.asarray(labels, bool)
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return None
    ranks = rankdata(np.concatenate([pos, neg]))  # ties get their mean rank
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))
