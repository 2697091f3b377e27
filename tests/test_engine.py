"""The batched training engine: config identity and validation, SGD equivalence, batch = alone, divergence, bad input."""
import os, time
from dataclasses import replace
from pathlib import Path
import pytest, torch
import torch.nn.functional as F
from torch import nn
from nncomp.config import *
from nncomp.nets.registry import build_model, MODELS, model_class
from nncomp.nets.models import MLP
from nncomp.engine.train import train_batch, batch_key, toy_data, DataOrder, FlatState, RunHyper, sgd_step

SMALL = ModelConfig(hidden=(16,))
TR = TrainConfig(epochs=4, batch_size=32, patience=2)

@pytest.fixture(scope='module')
def data(): return toy_data(n_train=384, n_valid=128, n_test=128)

def test_config_roundtrip_and_identity():
    cfg = study_config('obd', 0.99, hidden=30)
    assert from_dict(to_dict(cfg)) == cfg
    assert run_id(cfg) == run_id(from_dict(to_dict(cfg))) and len(run_id(cfg)) == 16
    assert run_id(cfg) != run_id(replace(cfg, train=replace(cfg.train, lr=0.02)))
    assert to_dict(cfg)['schema'] == SCHEMA

@pytest.mark.parametrize('kw,msg', [
    (dict(method=MethodConfig('prune')), "'prune'"), (dict(schedule=ScheduleConfig('exp')), "'exp'"),
    (dict(method=MethodConfig('magnitude', 1.0)), '[0, 1)'), (dict(method=MethodConfig('obd', -0.2)), '-0.2'),
    (dict(model=ModelConfig(hidden=(0,))), 'H > 0'), (dict(train=TrainConfig(epochs=0)), 'epochs=0'),
    (dict(train=TrainConfig(epochs=-1)), 'positive int')])
def test_bad_config_names_value_and_allowed(kw, msg):
    with pytest.raises(ValueError, match='allowed') as e: RunConfig(**kw).validate()
    assert msg in str(e.value)

def test_bad_input_fails_before_training(data, monkeypatch):
    import nncomp.engine.train as T
    monkeypatch.setattr(T, 'build_model', lambda *a, **k: pytest.fail('trained despite bad input'))
    for cfg in [RunConfig(model=SMALL, method=MethodConfig('magnitude', 1.2)), RunConfig(model=SMALL, train=replace(TR, epochs=0)),
                RunConfig(model=ModelConfig(hidden=(-1,))), RunConfig(model=SMALL, schedule=ScheduleConfig('linear'))]:
        with pytest.raises(ValueError, match='allowed'): train_batch([RunConfig(model=SMALL), cfg], [0, 1], data, progress=False)
    with pytest.raises(ValueError, match='kind'): model_class('mlp')

def test_registry_holds_the_classes():
    assert MODELS['fc'] is MLP and all(isinstance(v, type) for v in MODELS.values())

def test_common_random_numbers():
    m = build_model(SMALL, [MethodConfig()] * 3, [7, 8, 7])
    w = m.w0.detach()
    assert torch.equal(w[0], w[2]) and not torch.equal(w[0], w[1])
    o = DataOrder([7, 8, 7], 100, 'cpu'); p = o.epoch(); b = o.batch(p, 0, 10)
    assert torch.equal(b[0], b[2]) and not torch.equal(b[0], b[1])
    assert not torch.equal(o.epoch(), p)   # a new permutation each epoch

def _reference(cfg, seed, data, epochs):
    "nn.Linear + torch.optim.SGD, same init and data order."
    m = build_model(cfg.model, [cfg.method], [seed])
    net = nn.Sequential(nn.Linear(784, 16), nn.ReLU(), nn.Linear(16, 10))
    with torch.no_grad():
        for lin, (w, b) in zip([net[0], net[2]], m.layers()): lin.weight.copy_(w[0]); lin.bias.copy_(b[0])
    t = cfg.train
    opt = torch.optim.SGD([{'params': [net[0].weight, net[2].weight], 'weight_decay': t.reg_strength},
                           {'params': [net[0].bias, net[2].bias], 'weight_decay': 0.0}], lr=t.lr, momentum=t.momentum)
    order, B = DataOrder([seed], len(data.train.x), 'cpu'), t.batch_size
    for _ in range(epochs):
        perms = order.epoch()
        for s in range(len(data.train.x) // B):
            idx = order.batch(perms, s, B)[0]
            opt.zero_grad(); F.cross_entropy(net(data.train.x[idx]), data.train.y[idx]).backward(); opt.step()
    return dict(zip(['w0', 'b0', 'w1', 'b1'], [p.detach() for p in net.parameters()]))

def test_engine_is_torch_sgd(data):
    cfgs = [RunConfig(model=SMALL, train=replace(TR, lr=lr, reg=reg, reg_strength=lam, epochs=3, patience=3))
            for lr, reg, lam in [(0.05, 'l1', 1e-4), (0.03, 'l2', 1e-3), (0.01, 'none', 0.0)]]
    res = train_batch(cfgs, [5, 3, 5], data, progress=False)
    ref = _reference(cfgs[1], 3, data, res[1]['best_epoch'])
    for k, t in ref.items(): torch.testing.assert_close(res[1]['state'][k], t, rtol=1e-4, atol=1e-5)

def test_batch_equals_alone_with_pruning(data):
    sch = ScheduleConfig('cubic', steps=2, every=1)
    cfgs = [RunConfig(model=SMALL, train=replace(TR, lr=lr, reg=reg, reg_strength=lam), method=MethodConfig(m, a, sc), schedule=sch)
            for lr, reg, lam, m, a, sc in [(0.02, 'l2', 5e-4, 'obd', .9, 'global'), (0.05, 'l1', 1e-4, 'magnitude', .8, 'layer'),
                                           (0.02, 'l2', 5e-4, 'random', .5, 'global'), (0.01, 'none', 0., 'none', 0., 'global')]]
    seeds = [0, 1, 1, 2]
    together = train_batch(cfgs, seeds, data, progress=False)
    for i in range(len(cfgs)):
        alone = train_batch([cfgs[i]], [seeds[i]], data, progress=False)[0]
        assert (alone['best_epoch'], alone['epochs'], alone['n_alive_edges']) == (together[i]['best_epoch'], together[i]['epochs'], together[i]['n_alive_edges'])
        for k, t in alone['state'].items(): torch.testing.assert_close(t, together[i]['state'][k], rtol=1e-4, atol=1e-5)
        assert alone['test_acc'] == pytest.approx(together[i]['test_acc'], abs=1e-6)

def test_selection_and_history(data):
    cfg = RunConfig(model=SMALL, train=replace(TR, epochs=6, patience=2), method=MethodConfig('magnitude', 0.9), schedule=ScheduleConfig('sqrt', 2, 2))
    r = train_batch([cfg], [0], data, progress=False)[0]
    assert r['best_epoch'] >= 4                          # selected after the last pruning step (epoch 4)
    best = max(h['valid_acc'] for h in r['history'] if h['epoch'] >= 4)
    assert r['valid_acc'] == pytest.approx(best)         # the reported model is the selected one
    assert r['removed_fraction'] == pytest.approx(0.9, abs=1e-4) and r['n_params'] == r['n_alive_edges'] + r['n_biases']
    assert set(r) >= {'test_acc', 'valid_acc', 'best_epoch', 'epochs', 'n_edges', 'n_alive_edges', 'n_biases', 'n_params',
                      'removed_fraction', 'failed', 'reason', 'wall_time', 'history', 'state'}
    import json; json.dumps({k: v for k, v in r.items() if k != 'state'})

def test_divergence_is_per_run(data):
    r = train_batch([RunConfig(model=SMALL, train=replace(TR, lr=lr)) for lr in (1e4, 0.02)], [0, 0], data, progress=False)
    assert r[0]['failed'] and 'non-finite' in r[0]['reason'] and r[0]['test_acc'] is None
    assert not r[1]['failed'] and r[1]['test_acc'] > 0.5

@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu(data):
    cfg = RunConfig(model=SMALL, train=TR, method=MethodConfig('obd', 0.8), schedule=ScheduleConfig('sqrt', 2, 1))
    a, b = train_batch([cfg] * 2, [0, 1], data, progress=False), train_batch([cfg] * 2, [0, 1], data, device='cuda', progress=False)
    for x, y in zip(a, b): assert abs(x['test_acc'] - y['test_acc']) < 0.05 and x['n_alive_edges'] == y['n_alive_edges']

def test_mnist_fc_learns(data_root):
    from nncomp.data.datasets import load_dataset, subsample
    data = subsample(load_dataset('mnist', root=data_root), 3000, 1000)
    cfgs = [study_config(m, 0.9, train={'epochs': 4, 'patience': 2}, schedule=ScheduleConfig('sqrt', 2, 1)) for m in ('magl2', 'magl1', 'obd')]
    res = train_batch(cfgs, [0, 0, 0], data, progress=False)
    for r in res: assert not r['failed'] and r['test_acc'] > 0.8 and r['removed_fraction'] == pytest.approx(0.9, abs=1e-4)
