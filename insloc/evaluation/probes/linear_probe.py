"""Probes on frozen features: logistic regression (L-BFGS, regularisation swept on a held-out part
of the training set), an SGD linear head, and RotNet's non-linear probe.

Revisiting SSL fits a multinomial logistic regression with L-BFGS and picks the weight decay on a
held-out split of the training set (then refits on the whole set). Features are standardised with
the training set's statistics first (in float64: pooled features of a random trunk vary little
around a large mean), so the sweep means the same thing for every layer and every trunk.
scikit-learn fits small sets; ``backend="torch"`` runs full-batch L-BFGS in torch for large ones.

On imbalanced sets (object crops: half of them people) top-1 accuracy rewards predicting the
majority class; ``balanced=True`` weights every class equally in the loss and picks C by mean
per-class held-out accuracy, the number to read there ("mean_class_accuracy"; chance is 1 / K).
"""

from typing import Dict, Optional, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["PROBES", "fit_probe", "held_out_split"]

PROBES = ("logreg", "sgd", "mlp")
# Inverse regularisation strengths C swept by the logistic regression: C = 1 / (N lambda) for a
# weight decay lambda on the mean loss, so on a few hundred examples C = 1 is already a mild
# lambda of ~0.005; the range spans Revisiting SSL's wide log sweep of lambda.
DEFAULT_CS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
# L-BFGS iterations of a logistic-regression fit (large C on separable features needs many).
MAX_ITER = 1000


def held_out_split(labels: np.ndarray, fraction: float, seed: int = 0):
    """Stratified (train indices, held-out indices); every class keeps a training example, and
    every class with two or more holds one out (so rare classes count in the C sweep too)."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        k = min(len(members) - 1, max(1, int(round(fraction * len(members)))))
        held.append(members[:k])
        train.append(members[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))


def _standardise(train: np.ndarray, *others: np.ndarray):
    """Zero mean, unit variance per column with the training set's statistics, in float64.

    No absolute epsilon: a column of tiny spread is scaled up whatever its scale. A column whose
    spread is within rounding of its magnitude in the input's precision (a dead channel) is only
    centred: scaling it would blow rounding noise up to a unit-variance feature.
    """
    eps = np.finfo(train.dtype if train.dtype.kind == "f" else np.float64).eps
    train = train.astype(np.float64)
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    dead = (np.ptp(train, axis=0) == 0) | (std <= 16 * eps * np.abs(mean))
    std = np.where(dead, 1.0, std)
    return [((x.astype(np.float64) - mean) / std).astype(np.float32) for x in (train, *others)]


def _accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    return float((pred == labels).mean()) if len(labels) else float("nan")


def _mean_class_accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy of each class present in ``labels``, averaged (chance: 1 / K)."""
    if not len(labels):
        return float("nan")
    return float(np.mean([(pred[labels == c] == c).mean() for c in np.unique(labels)]))


def _class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """N / (K n_c) per class (scikit-learn's "balanced"): every class weighs the same in total."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


def _logreg_sklearn(x, y, c: float, seed: int, weights=None):
    from sklearn.linear_model import LogisticRegression

    class_weight = None if weights is None else {int(k): weights[k] for k in np.unique(y)}
    model = LogisticRegression(
        C=c, solver="lbfgs", max_iter=MAX_ITER, random_state=seed, class_weight=class_weight
    )
    model.fit(x, y)
    return model.predict


def _logreg_torch(x, y, c: float, seed: int, num_classes: int, weights=None):
    """Multinomial logistic regression by full-batch L-BFGS, minimising scikit-learn's objective
    divided by C N: (weighted) mean CE + ||W||^2 / (2 C N), so the same C means the same fit."""
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    # per-example weights summing to N, as scikit-learn's class_weight scales each term
    w = torch.ones(len(y)) if weights is None else torch.from_numpy(weights[y]).float()
    linear = nn.Linear(x.shape[1], num_classes)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    opt = torch.optim.LBFGS(
        linear.parameters(),
        lr=1.0,
        max_iter=MAX_ITER,
        tolerance_grad=1e-6,
        history_size=20,
        line_search_fn="strong_wolfe",
    )
    decay = 1.0 / (2.0 * c * len(x))

    def closure():
        opt.zero_grad()
        ce = nn.functional.cross_entropy(linear(xt), yt, reduction="none")  # N
        loss = (w * ce).mean() + decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return lambda z: linear(torch.from_numpy(z).float()).argmax(1).numpy()


def _train_head(
    head: nn.Module, x, y, *, epochs: int, lr: float, weight_decay: float, seed: int, weights=None
):
    """Mini-batch SGD (momentum 0.9, cosine lr) of ``head`` on features ``x``, the cross-entropy
    weighted per class by ``weights`` (K, or None); returns predict."""
    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x).float(), torch.from_numpy(y).long()
    wt = None if weights is None else torch.from_numpy(weights).float()
    opt = torch.optim.SGD(head.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    steps_per_epoch = max(1, int(np.ceil(len(x) / 256)))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    head.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(steps_per_epoch):
            idx = order[i * 256 : (i + 1) * 256]
            if len(idx) < 2 and any(isinstance(m, nn.BatchNorm1d) for m in head.modules()):
                continue
            loss = nn.functional.cross_entropy(head(xt[idx]), yt[idx], weight=wt)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    head.eval()

    def predict(z):
        with torch.no_grad():
            return head(torch.from_numpy(z).float()).argmax(1).numpy()

    return predict


def mlp_probe(in_dim: int, num_classes: int, hidden: int = 200) -> nn.Module:
    """RotNet's non-linear probe: two hidden layers of 200 with BN and ReLU, then linear."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, num_classes),
    )


def fit_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    probe: str = "logreg",
    cs: Sequence[float] = DEFAULT_CS,
    held_out_fraction: float = 0.2,
    balanced: bool = False,
    backend: str = "sklearn",
    epochs: int = 30,
    lr: float = 0.1,
    weight_decay: float = 5e-4,
    seed: int = 0,
) -> Dict[str, float]:
    """Fit a probe on (train_x, train_y) and report its test accuracy.

    Args:
        train_x, test_x: N x D and M x D features; train_y, test_y: labels 0..K-1.
        probe: "logreg" (L-BFGS, C swept on a held-out part of the training set, then refit on
            all of it), "sgd" (linear head by SGD) or "mlp" (RotNet's non-linear probe by SGD).
        cs: the inverse regularisation strengths swept by "logreg".
        held_out_fraction: share of each training class held out for the sweep.
        balanced: weight every class equally in the loss (every probe) and, for "logreg",
            choose C by mean per-class held-out accuracy rather than top-1 (imbalanced sets).
        backend: "sklearn" or "torch" L-BFGS for "logreg".
        epochs, lr, weight_decay: the SGD probes' schedule.
        seed: every random draw of the probe.
    Returns:
        {"accuracy": test top-1 in [0, 1], "mean_class_accuracy": test accuracy averaged over
        classes, "train_accuracy": ..., and for "logreg" "C" and "held_out_accuracy" (top-1, or
        mean per-class when ``balanced``) of the chosen C}.
    """
    if probe not in PROBES:
        raise ValueError(f"probe {probe!r}: expected one of {', '.join(PROBES)}")
    if backend not in ("sklearn", "torch"):
        raise ValueError(f"backend {backend!r}: expected 'sklearn' or 'torch'")
    num_classes = int(max(train_y.max(), test_y.max() if len(test_y) else 0)) + 1
    train_x, test_x = _standardise(train_x, test_x)
    if probe == "logreg":

        def fit(x, y, c):
            weights = _class_weights(y, num_classes) if balanced else None
            if backend == "torch":
                return _logreg_torch(x, y, c, seed, num_classes, weights)
            return _logreg_sklearn(x, y, c, seed, weights)

        score = _mean_class_accuracy if balanced else _accuracy
        fit_idx, held_idx = held_out_split(train_y, held_out_fraction, seed)
        scores = []
        for c in cs:
            predict = fit(train_x[fit_idx], train_y[fit_idx], c)
            scores.append(score(predict(train_x[held_idx]), train_y[held_idx]))
        best = int(np.nanargmax(scores)) if not np.all(np.isnan(scores)) else len(cs) // 2
        predict = fit(train_x, train_y, cs[best])
        extra = {"C": float(cs[best]), "held_out_accuracy": scores[best]}
    else:
        if probe == "sgd":
            head = nn.Linear(train_x.shape[1], num_classes)
        else:
            head = mlp_probe(train_x.shape[1], num_classes)
        weights = _class_weights(train_y, num_classes) if balanced else None
        predict = _train_head(
            head,
            train_x,
            train_y,
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            seed=seed,
            weights=weights,
        )
        extra = {}
    test_pred = predict(test_x)
    return {
        "accuracy": _accuracy(test_pred, test_y),
        "mean_class_accuracy": _mean_class_accuracy(test_pred, test_y),
        "train_accuracy": _accuracy(predict(train_x), train_y),
        **extra,
    }


def evaluate_layers(
    trunk,
    train_set,
    test_set,
    layers: Sequence[str],
    *,
    grid: int = 1,
    resize_to: int = 0,
    crop: int = 0,
    batch_size: int = 64,
    device="cpu",
    skipped: Optional[dict] = None,
    **probe_kwargs,
) -> Dict[str, Dict[str, float]]:
    """Extract frozen features of both sets at every layer and fit one probe per layer.

    Args:
        trunk: a :class:`~insloc.evaluation.probes.features.Trunk`.
        train_set, test_set: ``LabelledImages``.
        layers: tap names ("pre-logits", "block3", ...).
        grid, resize_to, crop, batch_size, device: see ``extract_features``.
        skipped: when given, ``{"train": set(), "test": set()}``: unreadable images are left out
            of both the features and the labels, and their indices added to these sets; None:
            an unreadable image is an error.
        probe_kwargs: see :func:`fit_probe`.
    Returns:
        {layer: fit_probe's result plus "dim", the feature dimension}, in ``layers`` order.
    """
    from .features import extract_features

    opts = dict(grid=grid, resize_to=resize_to, crop=crop, batch_size=batch_size, device=device)
    feats, labels = {}, {}
    for split, data in (("train", train_set), ("test", test_set)):
        bad = None if skipped is None else skipped.setdefault(split, set())
        feats[split] = extract_features(trunk, data, layers, skipped=bad, **opts)
        labels[split] = np.delete(data.labels, sorted(bad)) if bad else data.labels
    train, test = feats["train"], feats["test"]
    out = {}
    for layer in layers:
        result = fit_probe(
            train[layer], labels["train"], test[layer], labels["test"], **probe_kwargs
        )
        out[layer] = {**result, "dim": int(train[layer].shape[1])}
    return out
