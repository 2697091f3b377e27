"""Pruning: exact OBD Hessian diagonal vs autograd, masks only shrink, pruned weights and momentum stay zero, schedules."""
import math
import pytest, torch
import torch.nn.utils.prune as tprune
from nncomp.config import *
from nncomp.engine.prune import fc_hessian_diag, select, sparsity_at, pruning_steps, magnitude, obd, taylor
from nncomp.nets.registry import build_model
from nncomp.engine.train import FlatState, RunHyper, sgd_step

def _loss(ws, bs, x, y):
    a = x
    for i, (w, b) in enumerate(zip(ws, bs)):
        a = a @ w.T + b
        if i < len(ws) - 1: a = a.relu()
    return torch.nn.functional.cross_entropy(a, y)

@pytest.mark.parametrize('sizes', [[7, 5, 4], [6, 4, 5, 3], [8, 3, 10]])
def test_obd_hessian_diag_is_exact(sizes):
    g = torch.Generator().manual_seed(len(sizes))
    R, B = 3, 9
    ws = [torch.randn(R, o, i, generator=g, dtype=torch.float64) for i, o in zip(sizes, sizes[1:])]
    bs = [torch.randn(R, o, generator=g, dtype=torch.float64) for o in sizes[1:]]
    x = torch.randn(R, B, sizes[0], generator=g, dtype=torch.float64)
    y = torch.randint(0, sizes[-1], (R, B), generator=g)
    hs = fc_hessian_diag(ws, bs, x, y)
    for r in range(R):
        for l in range(len(ws)):
            f = lambda wl: _loss([w[r] for w in ws[:l]] + [wl] + [w[r] for w in ws[l + 1:]], [b[r] for b in bs], x[r], y[r])
            H = torch.func.hessian(f)(ws[l][r])
            torch.testing.assert_close(hs[l][r], H.reshape(ws[l][r].numel(), -1).diagonal().reshape(ws[l][r].shape), rtol=1e-9, atol=1e-12)

def test_saliencies_are_pure():
    w, h, g = torch.randn(2, 3, 4), torch.rand(2, 3, 4), torch.randn(2, 3, 4)
    w0 = w.clone()
    torch.testing.assert_close(obd(w, h), 0.5 * h * w ** 2); torch.testing.assert_close(taylor(w, g), (w * g).abs())
    torch.testing.assert_close(magnitude(w), w.abs()); assert torch.equal(w, w0)

@pytest.mark.parametrize('scope', ['layer', 'global'])
def test_masks_only_shrink(scope):
    g = torch.Generator().manual_seed(1)
    shapes = {'a': (4, 20, 30), 'b': (4, 10, 20)}
    masks = {k: torch.ones(s, dtype=torch.bool) for k, s in shapes.items()}
    total = sum(math.prod(s[1:]) for s in shapes.values())
    for step in range(8):
        amount = torch.rand(4, generator=g, dtype=torch.float64) * 0.95       # may go down: must not regrow
        scores = {k: torch.randn(s, generator=g) for k, s in shapes.items()}  # fresh scores each step
        new = select(scores, masks, amount, scope)
        for k in shapes: assert not (new[k] & ~masks[k]).any()
        removed = sum((~new[k]).flatten(1).sum(1) for k in shapes)
        prev_removed = sum((~masks[k]).flatten(1).sum(1) for k in shapes)
        want = torch.maximum(torch.floor(amount * total + 0.5).long(), prev_removed) if scope == 'global' else None
        if want is not None: assert torch.equal(removed, want)
        masks = new

def test_select_matches_torch_prune():
    for amount in (0.3, 0.9, 0.99):
        lin = torch.nn.Linear(40, 25)
        tprune.l1_unstructured(lin, 'weight', amount=amount)
        mine = select({'w': lin.weight_orig.detach().abs()[None]}, {'w': torch.ones(1, 25, 40)}, amount)['w'][0]
        assert torch.equal(mine, lin.weight_mask.bool())

def test_pruned_weights_and_momentum_stay_zero():
    model = build_model(ModelConfig(hidden=(12,)), [MethodConfig('magnitude', .9)] * 2, [0, 1])
    state = FlatState(model)
    hyper = RunHyper([RunConfig(train=TrainConfig(reg=r, reg_strength=1e-3)) for r in ('l1', 'l2')], 'cpu')
    masks = state.masks(model)
    assert set(masks) == {'w0', 'w1'} and model.get_buffer('w0_mask') is masks['w0']
    g = torch.Generator().manual_seed(0)
    for step in range(6):
        if step in (1, 3):
            new = select({k: magnitude(w.detach()) for k, w in model.prunable().items()}, masks, 0.5 if step == 1 else 0.8)
            for k in masks: masks[k].copy_(new[k])
            state.apply_masks()
        state.g.copy_(torch.randn(state.g.shape, generator=g))     # any gradient
        sgd_step(state, hyper)
        for k, m in masks.items():
            pv = state.views[k]
            assert (pv.w[m == 0] == 0).all() and (pv.v[m == 0] == 0).all()
    for k, w in model.prunable().items(): assert (w.detach()[masks[k] == 0] == 0).all()
    assert model.n_params().tolist() == [int(masks['w0'][r].sum() + masks['w1'][r].sum()) + 22 for r in range(2)]

def test_schedules():
    s = ScheduleConfig('sqrt', steps=10, every=5, c=1.0)
    assert [round(sparsity_at(s, 0.99, i), 6) for i in (0, 1, 4, 10)] == [0, round(0.99 * math.sqrt(.1), 6), round(0.99 * math.sqrt(.4), 6), 0.99]
    assert sparsity_at(ScheduleConfig('sqrt', 10, 5, c=4.0), 0.9, 3) == 0.9                  # c·i/k ≥ 1: capped at S
    assert sparsity_at(ScheduleConfig('cubic', 10, 5), 0.9, 5) == pytest.approx(0.9 * (1 - 0.5 ** 3))
    assert [sparsity_at(ScheduleConfig('oneshot', 3, 5), 0.9, i) for i in range(4)] == [0, 0, 0, 0.9]
    steps = pruning_steps(s, 0.5)
    assert list(steps) == list(range(5, 55, 5)) and list(steps.values()) == sorted(steps.values())
    for kind in ('sqrt', 'cubic'):
        v = [sparsity_at(ScheduleConfig(kind, 20, 1), 0.998, i) for i in range(21)]
        assert v == sorted(v) and v[-1] == pytest.approx(0.998)

def test_bad_pruning_input():
    with pytest.raises(ValueError, match='sqrt, cubic, oneshot'): sparsity_at(ScheduleConfig('step', 3, 1), .5, 1)
    with pytest.raises(ValueError, match=r'\[0, 1\)'): select({'w': torch.rand(1, 3, 3)}, {'w': torch.ones(1, 3, 3)}, 1.0)
    with pytest.raises(ValueError, match='layer, global'): select({'w': torch.rand(1, 3, 3)}, {'w': torch.ones(1, 3, 3)}, .5, 'unit')
    with pytest.raises(ValueError, match='allowed'): study_config('magl2', 1.0)
