"""Optimizers: Muon and the AdamW part against straightforward reference implementations, routing, LR decay."""

import numpy as np
import pytest
import torch
from torch import nn

from router_core.specs import AdamSpec, AdamWSpec, MuonSpec
from router_neural.optim import build_optimizer, muon_parameters, newton_schulz
from router_neural.optim.muon import NS_COEFFICIENTS, MuonAdamW


def reference_newton_schulz(g: np.ndarray, steps: int) -> np.ndarray:
    """Textbook form in float64: X <- aX + b(XX^T)X + c(XX^T)^2 X on the wide orientation, X0 = G/||G||_F."""
    a, b, c = NS_COEFFICIENTS
    x = g.T if g.shape[0] > g.shape[1] else g
    x = x / np.linalg.norm(x)
    for _ in range(steps):
        gram = x @ x.T
        x = a * x + b * gram @ x + c * gram @ gram @ x
    return x.T if g.shape[0] > g.shape[1] else x


def reference_muon(weights, grads_per_step, lr, momentum, nesterov, steps, wd):
    """Muon written out loop by loop, float64."""
    w = [x.copy() for x in weights]
    bufs = [np.zeros_like(x) for x in weights]
    for grads in grads_per_step:
        for i, g in enumerate(grads):
            bufs[i] = momentum * bufs[i] + g
            d = g + momentum * bufs[i] if nesterov else bufs[i]
            w[i] = w[i] * (1 - lr * wd) - lr * max(1.0, w[i].shape[0] / w[i].shape[1]) ** 0.5 * reference_newton_schulz(d, steps)
    return w


@pytest.mark.parametrize("shape", [(8, 5), (5, 8), (6, 6)])
def test_newton_schulz_matches_reference_and_orthogonalises(shape):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    out = newton_schulz(g, steps=5)
    np.testing.assert_allclose(out.numpy(), reference_newton_schulz(g.double().numpy(), 5), rtol=1e-4, atol=1e-5)
    singular = torch.linalg.svdvals(out)
    assert out.shape == g.shape and singular.min() > 0.5 and singular.max() < 1.3


@pytest.mark.parametrize("nesterov", [True, False])
def test_muon_matches_reference_implementation(nesterov):
    gen = torch.Generator().manual_seed(1)
    params = [nn.Parameter(torch.randn(6, 4, generator=gen)), nn.Parameter(torch.randn(3, 7, generator=gen))]
    start = [p.detach().double().numpy().copy() for p in params]
    opt = MuonAdamW([{"params": params, "use_muon": True, "lr": 0.05, "momentum": 0.9, "nesterov": nesterov,
                      "ns_steps": 5, "weight_decay": 0.1}])
    grads = [[torch.randn(p.shape, generator=gen) for p in params] for _ in range(4)]
    for step in grads:
        for p, g in zip(params, step, strict=True):
            p.grad = g.clone()
        opt.step()
    expected = reference_muon(start, [[g.double().numpy() for g in s] for s in grads], 0.05, 0.9, nesterov, 5, 0.1)
    for p, e in zip(params, expected, strict=True):
        np.testing.assert_allclose(p.detach().double().numpy(), e, rtol=1e-4, atol=1e-5)


def test_muon_agrees_with_torch_muon_when_available():
    if not hasattr(torch.optim, "Muon"):
        pytest.skip("this torch has no torch.optim.Muon")
    gen = torch.Generator().manual_seed(2)
    ours, theirs = nn.Parameter(torch.randn(8, 4, generator=gen)), None
    theirs = nn.Parameter(ours.detach().clone())
    opt_ours = MuonAdamW([{"params": [ours], "use_muon": True, "lr": 0.02, "momentum": 0.95, "nesterov": True,
                           "ns_steps": 5, "weight_decay": 0.0}])
    opt_theirs = torch.optim.Muon([theirs], lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.0)
    for _ in range(3):
        g = torch.randn(8, 4, generator=gen)
        ours.grad, theirs.grad = g.clone(), g.clone()
        opt_ours.step()
        opt_theirs.step()
    # torch runs Newton-Schulz in bfloat16, we run it in float32: equal up to bf16 rounding
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), atol=2e-3)


def test_adamw_part_matches_torch_adamw():
    gen = torch.Generator().manual_seed(3)
    ours = nn.Parameter(torch.randn(5, generator=gen))
    theirs = nn.Parameter(ours.detach().clone())
    opt_ours = MuonAdamW([{"params": [ours], "use_muon": False, "lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-8,
                           "weight_decay": 0.05}])
    opt_theirs = torch.optim.AdamW([theirs], lr=0.01, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.05)
    for _ in range(5):
        g = torch.randn(5, generator=gen)
        ours.grad, theirs.grad = g.clone(), g.clone()
        opt_ours.step()
        opt_theirs.step()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-5, atol=1e-7)


def test_muon_rejects_non_matrix_parameters():
    with pytest.raises(ValueError, match="2-D"):
        MuonAdamW([{"params": [nn.Parameter(torch.zeros(3))], "use_muon": True, "lr": 0.1}])


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(4, 3)
        self.hidden = nn.Linear(3, 5)
        self.out = nn.Linear(5, 1)
        self.norm = nn.LayerNorm(5)


def test_muon_routes_only_hidden_matrices():
    net = _Net()
    assert muon_parameters(net) == {id(net.hidden.weight)}
    optimizer, scheduler = build_optimizer(MuonSpec(), net)
    groups = {g["use_muon"]: g for g in optimizer.param_groups}
    assert [id(p) for p in groups[True]["params"]] == [id(net.hidden.weight)]
    assert len(groups[False]["params"]) == len(list(net.parameters())) - 1
    assert groups[True]["lr"] == 0.02 and groups[False]["lr"] == 3e-4 and scheduler is None


@pytest.mark.parametrize("spec", [AdamSpec(lr_decay_gamma=0.5), AdamWSpec(lr_decay_gamma=0.5), MuonSpec(lr_decay_gamma=0.5)])
def test_lr_decay_multiplies_every_group_per_epoch(spec):
    optimizer, scheduler = build_optimizer(spec, _Net())
    before = [g["lr"] for g in optimizer.param_groups]
    optimizer.step()
    scheduler.step()
    scheduler.step()
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([lr * 0.25 for lr in before])


def test_muon_state_round_trips_through_state_dict():
    net = _Net()
    optimizer, _ = build_optimizer(MuonSpec(), net)
    net.out(net.norm(net.hidden(net.embed(torch.tensor([0, 1]))))).sum().backward()
    optimizer.step()
    again, _ = build_optimizer(MuonSpec(), net)
    again.load_state_dict(optimizer.state_dict())
    assert torch.equal(again.state[net.hidden.weight]["momentum_buffer"], optimizer.state[net.hidden.weight]["momentum_buffer"])


@pytest.mark.parametrize("optimizer_type", ["adam", "adamw", "muon"])
def test_lr_scale_gives_named_submodules_their_own_scaled_groups(optimizer_type):
    from pydantic import TypeAdapter

    from router_core.specs import OptimizerSpec

    opt_spec = TypeAdapter(OptimizerSpec).validate_python({"optimizer_type": optimizer_type})
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    optimizer, _ = build_optimizer(opt_spec, module, {"1": 10.0})
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    for first, second in zip(module[0].parameters(), module[1].parameters(), strict=True):
        assert lr_of[id(second)] == pytest.approx(10.0 * lr_of[id(first)])
    assert sum(len(g["params"]) for g in optimizer.param_groups) == 4
