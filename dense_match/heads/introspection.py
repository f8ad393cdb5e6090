"""Probabilistic introspection (Novotny, Albanie, Larlus, Vedaldi, CVPR 2018).

Per location u, 1x1 convs on the dilated ResNet-50 res5 map give a unit descriptor phi_u and a
positive inverse confidence sigma_u. An image x and a synthetic warp x' of it give exact
correspondences u -> u'. For a pair with matching score s = <phi_u, phi'_v> and pair uncertainty
sigma = (sigma_u + sigma'_v) / 2, the likelihood is

    p(s | sigma) = exp(-l(s) / sigma) / Z(sigma),    Z(sigma) = integral over s in [-1, 1],

with l(s) = 1 - s for positives (v within POS_DIST of u's correspondent in x') and
l(s) = max(0, s - margin) for negatives (beyond NEG_DIST). Training minimises -log p: a large
sigma makes a bad score cheap but pays log Z(sigma), so sigma rises only where matching fails
(homogeneous or occluded regions). Each image pair samples NUM_POINTS locations; all
NUM_POINTS x NUM_POINTS scores are computed and, per positive, the NUM_HARD_NEGATIVES costliest
negatives kept.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .build import DENSE_HEAD_REGISTRY
from .sampling import sample_at

__all__ = ["Introspection", "introspection_nll"]


def introspection_nll(
    score: torch.Tensor, sigma: torch.Tensor, positive: bool, margin: float = 0.5
) -> torch.Tensor:
    """-log p(score | sigma), elementwise (see the module docstring).

    Args:
        score: any shape, cosine similarities in [-1, 1].
        sigma: same shape, > 0.
        positive: the pairs are positives (else negatives).
    """
    if positive:
        cost = 1 - score
        # Z = integral_{-1}^{1} exp(-(1 - s) / sigma) ds = sigma (1 - exp(-2 / sigma))
        log_z = torch.log(sigma) + torch.log(-torch.expm1(-2 / sigma))
    else:
        cost = F.relu(score - margin)
        # Z = (margin + 1) + sigma (1 - exp(-(1 - margin) / sigma))
        log_z = torch.log((margin + 1) - sigma * torch.expm1(-(1 - margin) / sigma))
    return cost / sigma + log_z


@DENSE_HEAD_REGISTRY.register()
class Introspection(nn.Module):
    """Descriptor and inverse-confidence 1x1 convs, and the introspection loss.

    Args:
        in_channels: channels of the features (2048 for ResNet-50 res5).
        dim: descriptor channels.
        pos_dist, neg_dist: positive / negative distance thresholds in warped-image pixels.
        num_hard_negatives: negatives kept per positive.
        margin: negatives cost max(0, s - margin).
        min_sigma, max_sigma: bounds of sigma, which is log-uniform between them:
            sigma = exp(log min + (log max - log min) sigmoid(z)).
    """

    TRAIN_DATA = "warp_pairs"

    def __init__(
        self,
        in_channels: int,
        dim: int = 128,
        pos_dist: float = 1.0,
        neg_dist: float = 30.0,
        num_hard_negatives: int = 30,
        margin: float = 0.5,
        min_sigma: float = 0.01,
        max_sigma: float = 100.0,
    ):
        super().__init__()
        self.phi = nn.Conv2d(in_channels, dim, kernel_size=1)
        self.sigma = nn.Conv2d(in_channels, 1, kernel_size=1)
        self.pos_dist = pos_dist
        self.neg_dist = neg_dist
        self.num_hard_negatives = num_hard_negatives
        self.margin = margin
        self.log_sigma_range = (math.log(min_sigma), math.log(max_sigma))

    @classmethod
    def from_config(cls, cfg, in_channels: int) -> "Introspection":
        c = cfg.DENSE.INTROSPECTION
        return cls(
            in_channels,
            dim=c.DIM,
            pos_dist=c.POS_DIST,
            neg_dist=c.NEG_DIST,
            num_hard_negatives=c.NUM_HARD_NEGATIVES,
            margin=c.MARGIN,
            min_sigma=c.MIN_SIGMA,
            max_sigma=c.MAX_SIGMA,
        )

    def forward(self, features: torch.Tensor) -> dict:
        """Args: features: N x C x h x w. Returns: desc N x dim x h x w, sigma N x 1 x h x w."""
        desc = F.normalize(self.phi(features), dim=1)  # N x dim x h x w
        # Bounded above: from a random start, SGD otherwise drives sigma to thousands within tens
        # of iterations, where -log p tends to log 2 for every pair whatever its score and the
        # descriptors get no gradient (1 / sigma) to leave that state.
        lo, hi = self.log_sigma_range
        sigma = torch.exp(lo + (hi - lo) * torch.sigmoid(self.sigma(features)))  # N x 1 x h x w
        return {"desc": desc, "sigma": sigma}

    def losses(self, extract, batch: dict) -> dict:
        """Args: batch with image, warped (N x 3 x S x S uint8), points (N x P x 2 in the image)
        and warped_points (N x P x 2: the same points in the warped image)."""
        n = batch["image"].shape[0]
        size = batch["image"].shape[-2:]
        out = self(extract(torch.cat([batch["image"], batch["warped"]])))
        pts, wpts = batch["points"].float(), batch["warped_points"].float()
        desc_a = F.normalize(sample_at(out["desc"][:n], pts, size), dim=-1)  # N x P x D
        desc_b = F.normalize(sample_at(out["desc"][n:], wpts, size), dim=-1)  # N x P x D
        sig_a = sample_at(out["sigma"][:n], pts, size)  # N x P x 1
        sig_b = sample_at(out["sigma"][n:], wpts, size)  # N x P x 1
        score = desc_a @ desc_b.transpose(1, 2)  # N x P x P: point i of x vs point j of x'
        sigma = (sig_a + sig_b.transpose(1, 2)) / 2  # N x P x P
        dist = torch.cdist(wpts, wpts)  # N x P x P: |u_i' - u_j'| in the warped image
        positive = dist < self.pos_dist
        negative = dist > self.neg_dist

        nll_pos = introspection_nll(score, sigma, True)[positive]  # (#positives,)
        nll_neg = introspection_nll(score, sigma, False, self.margin)
        nll_neg = nll_neg.masked_fill(~negative, float("-inf"))  # N x P x P
        k = min(self.num_hard_negatives, nll_neg.shape[-1])
        hard = nll_neg.topk(k, dim=-1).values  # N x P x k: costliest negatives of each row
        hard = hard[positive.any(-1)]  # rows of points that have a positive (all, by sampling)
        hard = hard[torch.isfinite(hard)]
        zero = score.sum() * 0  # keeps the graph when a term is empty
        return {
            "loss_pos": nll_pos.mean() if nll_pos.numel() else zero,
            "loss_neg": hard.mean() if hard.numel() else zero,
            "sigma_mean": sigma.detach().mean(),
        }
