"""The logistic-regression probe on features the way trunks give them: tiny scales, a large
offset, imbalanced classes with a few examples each."""

import numpy as np
import pytest

from insloc.evaluation import fit_probe
from insloc.evaluation.probes.linear_probe import held_out_split


def blobs(counts, dim=16, spread=5.0, seed=0):
    """Gaussian blobs, ``counts[k]`` points of class k: N x dim float64, labels N."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, spread, (len(counts), dim))
    y = np.repeat(np.arange(len(counts)), counts)
    return centres[y] + rng.normal(0, 1, (len(y), dim)), y


@pytest.mark.parametrize("backend", ["sklearn", "torch"])
@pytest.mark.parametrize("scale,offset", [(1e-11, 0.0), (1e-7, 30.0)])
def test_separable_features_of_tiny_scale_still_near_100(backend, scale, offset):
    # pooled features of a random trunk vary little around their mean: the probe must see the same
    # problem whatever the features' scale and offset
    x, y = blobs([60] * 4)
    tx, ty = blobs([60] * 4, seed=0)
    tx = tx + np.random.default_rng(1).normal(0, 0.5, tx.shape)
    opts = dict(backend=backend, cs=(0.01, 1.0))
    result = fit_probe(offset + scale * x, y, offset + scale * tx, ty, **opts)
    assert result["accuracy"] >= 0.97


def test_constant_features_are_ignored_not_amplified():
    # a column constant in the training set (a dead channel) must not become noise of unit scale
    x, y = blobs([40] * 3)
    tx, ty = blobs([40] * 3, seed=0)
    dead = np.full((len(x), 5), 0.7)
    tdead = dead[: len(tx)] + np.random.default_rng(3).normal(0, 1e-3, (len(tx), 5))
    result = fit_probe(np.hstack([x, dead]), y, np.hstack([tx, tdead]), ty)
    assert result["accuracy"] >= 0.97


def test_held_out_split_holds_out_one_of_every_class_with_two():
    labels = np.array([0] * 50 + [1, 1] + [2, 2, 2] + [3])
    fit, held = held_out_split(labels, 0.2, seed=0)
    assert sorted(np.unique(labels[held]).tolist()) == [0, 1, 2]
    assert set(np.unique(labels[fit]).tolist()) == {0, 1, 2, 3}  # every class keeps one to fit
    assert len(np.intersect1d(fit, held)) == 0 and len(fit) + len(held) == len(labels)


@pytest.mark.parametrize("probe,backend", [("logreg", "sklearn"), ("logreg", "torch"), ("sgd", "")])
def test_balanced_probe_beats_the_majority_class_on_imbalanced_classes(probe, backend):
    # one class with most of the examples, five with a handful, weakly informative features: the
    # plain probe predicts the majority class (mean per-class accuracy at chance, 1 / 6);
    # weighting the classes and choosing C by mean per-class accuracy recovers the small ones
    x, y = blobs([150, 6, 6, 6, 6, 6], spread=0.3, seed=4)
    tx, ty = blobs([20] * 6, spread=0.3, seed=4)
    opts = dict(probe=probe, backend=backend or "sklearn", cs=(0.01, 0.1, 1.0))
    plain = fit_probe(x, y, tx, ty, **opts)
    balanced = fit_probe(x, y, tx, ty, balanced=True, **opts)
    assert plain["mean_class_accuracy"] < 0.22
    assert balanced["mean_class_accuracy"] >= plain["mean_class_accuracy"] + 0.1
    assert balanced["mean_class_accuracy"] > 1.5 / 6


def test_mean_class_accuracy_of_majority_predictions_is_one_over_k():
    x, y = blobs([50, 10, 10])
    tx, ty = blobs([10, 30, 30], seed=1)
    # a C that small leaves only the class priors: the majority class for every example
    result = fit_probe(x, y, tx, ty, cs=(1e-8,))
    assert result["accuracy"] == pytest.approx(10 / 70)
    assert result["mean_class_accuracy"] == pytest.approx(1 / 3)
