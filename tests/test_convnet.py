"""ConvNet baseline: weight counts by hand, grouped conv = reference, batched run = run alone, grid, Pareto filter, bad input."""
from dataclasses import replace
import pandas as pd
import pytest, torch
from torch import nn
from nncomp.config import RunConfig, ModelConfig, MethodConfig, DataConfig, TrainConfig
from nncomp.convnet import (ConvNet, conv_counts, check_conv, conv_grid, sample_grid, conv_run_configs, pareto_front,
                            pareto_mask, with_weights, CONV_TRAIN, CONV_FIELDS)
from nncomp.models import model_class


@pytest.mark.parametrize('C,k,s,p,weights,biases', [
    (4, 5, 1, 2, 4 * 25 + 10 * 4 * 12 * 12, 14),      # conv map 24, pooled 12: 100 + 5760
    (12, 10, 3, 4, 12 * 100 + 10 * 12 * 1, 22),       # conv map floor(18/3)+1 = 7, pooled 1: 1200 + 120
    (8, 7, 2, 3, 8 * 49 + 10 * 8 * 3 * 3, 18)])       # conv map floor(21/2)+1 = 11, pooled 3: 392 + 720
def test_weight_counts_by_hand(C, k, s, p, weights, biases):
    assert conv_counts(C, k, s, p) == dict(weights=weights, biases=biases, n_params=weights + biases)
    net = ConvNet.from_configs(ModelConfig('conv', channels=C, kernel=k, stride=s, pool=p), [MethodConfig()] * 2, [0, 1])
    assert net.n_params().tolist() == [weights + biases] * 2 and net.n_edges() == weights
    assert sum(p[0].numel() for p in net.parameters()) == weights + biases


def test_grouped_conv_matches_torch_layers():
    cfg = ModelConfig('conv', channels=6, kernel=5, stride=2, pool=2)
    net = ConvNet.from_configs(cfg, [MethodConfig()] * 3, [0, 1, 2]).eval()
    x = torch.randn(3, 7, 784, generator=torch.Generator().manual_seed(0))
    y = net(x)
    for r in range(3):
        conv, lin = nn.Conv2d(1, 6, 5, 2), nn.Linear(net.w_fc.shape[-1], 10)
        with torch.no_grad():
            conv.weight.copy_(net.w_conv[r, :, None]); conv.bias.copy_(net.b_conv[r])
            lin.weight.copy_(net.w_fc[r]); lin.bias.copy_(net.b_fc[r])
        torch.testing.assert_close(y[r], lin(nn.MaxPool2d(2)(torch.relu(conv(x[r].view(7, 1, 28, 28)))).flatten(1)))
    torch.testing.assert_close(net(x[:1].expand(3, -1, -1)), net(x[:1].repeat(3, 1, 1)))   # shared-input path


def test_batched_run_equals_run_alone():
    "A run trained among others through the engine takes the same steps as alone (dropout included)."
    from nncomp.train import train_batch, toy_data
    data = toy_data(n_train=192, n_valid=64, n_test=64)
    cfg = conv_run_configs([ModelConfig('conv', channels=5, kernel=6, stride=2, pool=3, dropout=0.2)],
                           train=replace(CONV_TRAIN, epochs=2, patience=2))[0]
    batched = train_batch([cfg] * 3, [3, 4, 5], data, progress=False)
    alone = train_batch([cfg], [4], data, progress=False)[0]
    assert alone['test_acc'] == pytest.approx(batched[1]['test_acc'], abs=1e-6)
    for name, t in alone['state'].items():
        torch.testing.assert_close(t, batched[1]['state'][name], rtol=1e-4, atol=1e-5)
    assert alone['n_params'] == conv_counts(5, 6, 2, 3)['n_params'] and alone['n_edges'] == conv_counts(5, 6, 2, 3)['weights']


def test_grid_and_sample():
    grid = conv_grid()
    assert len(grid) == 6 * 9 * 3 * 3 * 3 == len(set(grid))
    assert {m.kernel for m in grid} == set(range(5, 11)) and {m.dropout for m in grid} == {0.0, 0.1, 0.2}
    assert len(conv_grid(kernel=(27, 28), channels=(4,), dropout=(0.0,))) == 1      # only k=27, s=1, p=2 is non-empty
    s = sample_grid(10, seed=1)
    assert s == sample_grid(10, seed=1) and s != sample_grid(10, seed=2) and len(set(s)) == 10
    assert [grid.index(m) for m in s] == sorted(grid.index(m) for m in s)
    cfgs = conv_run_configs(s)
    assert all(c.train == CONV_TRAIN and c.method == MethodConfig('none') for c in cfgs)
    assert (CONV_TRAIN.batch_size, CONV_TRAIN.lr, CONV_TRAIN.reg, CONV_TRAIN.reg_strength, CONV_TRAIN.epochs) == (16, 1e-2, 'l2', 1e-3, 30)


def test_pareto_filter_hand_made_points():
    pts = [(100, 0.90), (200, 0.95), (150, 0.89), (200, 0.94), (300, 0.95), (50, 0.80), (100, 0.90), (400, 0.99)]
    assert pareto_front(pts) == [(50, 0.80), (100, 0.90), (100, 0.90), (200, 0.95), (400, 0.99)]
    assert pareto_mask([1, 2, 3], [0.3, 0.2, 0.1]).tolist() == [True, False, False]
    assert pareto_mask([1, 2, 3], [0.1, 0.2, 0.3]).tolist() == [True, True, True]
    assert pareto_front([]) == []
    runs = pd.DataFrame(dict(kernel=[5, 5, 6, 6, 7, 7], weights=[10, 10, 20, 20, 5, 5],
                             test_acc=[.875, .875, .5, .5, .625, .875]))
    front = pareto_front(runs, by=['kernel'])
    assert front.kernel.tolist() == [7, 5] and front.test_acc.tolist() == [.75, .875]   # means over seeds


def test_with_weights_on_a_runs_table():
    df = with_weights(pd.DataFrame(dict(channels=[4, 12], kernel=[5, 10], stride=[1, 3], pool=[2, 4], test_acc=[.9, .8])))
    assert df.weights.tolist() == [5860, 1320] and df.biases.tolist() == [14, 22]


@pytest.mark.parametrize('kw,msg', [
    (dict(kernel=29), 'kernel=29 is larger than the 28×28 image'),
    (dict(kernel=20, stride=3, pool=4), 'empty feature map'),
    (dict(kernel=10, stride=1, pool=20), 'empty feature map'),
    (dict(channels=0), 'channels=0 is not allowed')])
def test_bad_geometry_fails_before_training(kw, msg, monkeypatch):
    import nncomp.train as T
    model = ModelConfig('conv', **kw)
    with pytest.raises(ValueError, match='allowed') as e: conv_run_configs([model])
    assert msg in str(e.value)
    with pytest.raises(ValueError, match='allowed'): check_conv(model.channels, model.kernel, model.stride, model.pool)
    data = T.toy_data(n_train=64, n_valid=16, n_test=16)
    monkeypatch.setattr(T, 'sgd_step', lambda *a: pytest.fail('trained despite bad input'))
    with pytest.raises(ValueError, match='allowed'):
        T.train_batch([RunConfig(model=model, train=TrainConfig(epochs=1, batch_size=16))], [0], data, progress=False)


def test_other_bad_input():
    with pytest.raises(ValueError, match="'hashednet' is not allowed"):
        ConvNet.from_configs(ModelConfig('conv'), [MethodConfig('hashednet', 0.5)], [0])
    with pytest.raises(ValueError, match='n=0 is not allowed'): sample_grid(0)
    with pytest.raises(ValueError, match="unknown grid axes"): conv_grid(width=(3,))
    with pytest.raises(ValueError, match="missing"): pareto_front(pd.DataFrame(dict(a=[1])))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    cfg = ModelConfig('conv', channels=6, kernel=5, stride=2, pool=2, dropout=0.1)
    cpu = ConvNet.from_configs(cfg, [MethodConfig()] * 2, [0, 1]).eval()
    gpu = ConvNet.from_configs(cfg, [MethodConfig()] * 2, [0, 1], device='cuda').eval()
    x = torch.randn(2, 8, 784)
    torch.testing.assert_close(gpu(x.cuda()).detach().cpu(), cpu(x).detach(), rtol=1e-3, atol=1e-3)
    from nncomp.train import train_batch, toy_data
    run = conv_run_configs([cfg], train=replace(CONV_TRAIN, epochs=1, patience=1))[0]
    assert not any(r['failed'] for r in train_batch([run] * 2, [0, 1], toy_data(128, 32, 32), device='cuda', progress=False))
