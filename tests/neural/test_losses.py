"""Pairwise losses (hand-computed values) and the supervised contrastive loss against a plain loop."""

import math

import pytest
import torch

from router_neural.losses import pair_correct, pair_losses, ranking_loss, supervised_contrastive_loss


def test_ranking_losses_by_hand():
    d = torch.tensor([-1.0, 0.0, 0.05, 2.0])
    assert ranking_loss(d, "margin_ranking", 0.1).tolist() == pytest.approx([1.1, 0.1, 0.05, 0.0])
    assert ranking_loss(d, "bradley_terry", 0.1).tolist() == pytest.approx([math.log1p(math.exp(-x)) for x in d.tolist()])
    with pytest.raises(ValueError):
        ranking_loss(d, "hinge", 0.1)


def test_pair_losses_handle_every_outcome():
    a = torch.tensor([1.0, 1.0, -0.5, 0.3])
    b = torch.tensor([0.5, 0.5, 0.2, -0.2])
    winner = torch.tensor([0, 1, 2, 3])  # A wins, B wins, tie, both_bad
    out = pair_losses(a, b, winner, kind="margin_ranking", margin=0.1, coeff=0.5, eps=0.01)
    expected = [
        0.0,  # A won by 0.5 > margin
        0.1 + 0.5,  # B lost by 0.5
        0.5 * ((0.01 + 0.5) + 0.0),  # tie: A is below +eps, B is above
        0.5 * ((0.3 + 0.01) + 0.0),  # both_bad: A is above -eps, B is below
    ]
    assert out.tolist() == pytest.approx(expected)


def test_zero_coefficient_ignores_ties_and_both_bad():
    out = pair_losses(torch.tensor([5.0, -5.0]), torch.tensor([5.0, 3.0]), torch.tensor([2, 3]),
                      kind="bradley_terry", margin=0.1, coeff=0.0, eps=0.01)
    assert out.tolist() == [0.0, 0.0]


def test_pair_correct_counts_strict_wins_only():
    a, b = torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([0.0, 0.0, 1.0, 2.0])
    assert pair_correct(a, b, torch.tensor([0, 1, 0, 2])).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_supervised_contrastive_loss_matches_loop():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(6, 4, generator=gen)
    labels = torch.tensor([0, 0, 1, 1, 1, 2])  # label 2 has no positive and is not an anchor
    t = 0.5
    zn = torch.nn.functional.normalize(z, dim=1)
    per_anchor = []
    for i in range(6):
        positives = [j for j in range(6) if j != i and labels[j] == labels[i]]
        if not positives:
            continue
        denom = sum(math.exp(float(zn[i] @ zn[k]) / t) for k in range(6) if k != i)
        per_anchor.append(sum(-(float(zn[i] @ zn[p]) / t - math.log(denom)) for p in positives) / len(positives))
    expected = sum(per_anchor) / len(per_anchor)
    assert float(supervised_contrastive_loss(z, labels, t)) == pytest.approx(expected, rel=1e-5)


def test_contrastive_loss_is_lower_for_clustered_embeddings():
    labels = torch.tensor([0, 0, 1, 1])
    clustered = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    mixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    assert supervised_contrastive_loss(clustered, labels, 0.1) < supervised_contrastive_loss(mixed, labels, 0.1)
