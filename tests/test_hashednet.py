"""HashedNet: xxHash32 vectors, determinism, bucket occupancy, exact ratios, gradient check, index-based = materialized,
training through the engine, bad input."""
import math, struct
from dataclasses import replace
import pytest, torch
from nncomp.config import RunConfig, ModelConfig, MethodConfig, TrainConfig
from nncomp.nets.hashednet import (xxh32, xxh32_many, xxh32_pair, xxh32_assignment, lua_assignment, lua_key, n_buckets,
                              occupancy_chi2, HashedTable, HashedLinear, HashedMLP, ASSIGNMENTS)
from nncomp.nets.registry import MODELS, model_class


def sanity_buffer(n):
    "The byte buffer of the reference xxhsum self-test."
    g, out = 2654435761, bytearray()
    for _ in range(n): out.append(g >> 56); g = (g * 11400714785074694797) % 2**64
    return bytes(out)


@pytest.mark.parametrize('data,seed,want', [
    (b'', 0, 0x02CC5D05), (b'a', 0, 0x550D7456), (b'abc', 0, 0x32D153FF),
    (b'Nobody inspects the spammish repetition', 0, 0xE2293B2F),
    (b'', 2654435761, 0x36B78AE7), (sanity_buffer(1), 0, 0xCF65B03E), (sanity_buffer(1), 2654435761, 0xB4545AA4),
    (sanity_buffer(14), 0, 0x1208E7E2), (sanity_buffer(14), 2654435761, 0x6AF1D1FE),
    (sanity_buffer(222), 0, 0x5BD11DBD), (sanity_buffer(222), 2654435761, 0x58803C5F)])
def test_xxh32_published_vectors(data, seed, want):
    assert xxh32(data, seed) == want
    assert xxh32_many([data], seed).tolist() == [want]


def test_vectorized_hashes_match_reference():
    keys = [sanity_buffer(n) for n in range(50)] + [lua_key(i, j, 'idxW').encode() for i in (1, 99) for j in (1, 784)]
    for seed in (0, 1691, 2**32 - 1):
        assert xxh32_many(keys, seed).tolist() == [xxh32(k, seed) for k in keys]
    ij = torch.randint(0, 2**32, (2, 500), generator=torch.Generator().manual_seed(3), dtype=torch.int64)
    ij[:, 0] = 2**32 - 1
    for seed in (0, 1691):
        assert xxh32_pair(ij[0], ij[1], seed).tolist() == [xxh32(struct.pack('<II', a, b), seed) for a, b in ij.T.tolist()]


def test_assignment_deterministic_and_pinned():
    "The same seed gives the same hashing in every process and on every machine (values pinned)."
    rows, cols = torch.tensor([0, 0, 99, 5]), torch.tensor([0, 1, 783, 7])
    b, s = xxh32_assignment(rows, cols, 784, seed=0, layer=0)
    assert b.tolist() == [366, 505, 325, 24] and s.tolist() == [1.0, -1.0, 1.0, -1.0]
    b2, s2 = xxh32_assignment(rows, cols, 784, seed=0, layer=0)
    assert torch.equal(b, b2) and torch.equal(s, s2)
    b3, _ = xxh32_assignment(torch.arange(1000) // 50, torch.arange(1000) % 50, 100, seed=1, layer=0)
    b4, _ = xxh32_assignment(torch.arange(1000) // 50, torch.arange(1000) % 50, 100, seed=0, layer=0)
    assert (b3 != b4).float().mean() > 0.9                       # another seed, another hash
    lb, ls = lua_assignment(2, 3, 1000)
    assert lb.tolist() == [[820, 159, 653], [32, 824, 195]] and ls.tolist() == [[-1.0, -1.0, 1.0], [-1.0, 1.0, -1.0]]
    assert lb[0, 0] == xxh32(b'123_123idxW', 1691) % 1000 and lb[1, 2] == xxh32(b'234_345idxW', 1691) % 1000
    t1, t2 = (HashedTable(30, 40, [100, 1200], [7, 8], layer=2) for _ in range(2))
    assert torch.equal(t1.idx, t2.idx) and torch.equal(t1.sign, t2.sign)


@pytest.mark.parametrize('assignment', ASSIGNMENTS)
@pytest.mark.parametrize('compression', [0.01, 0.1])
def test_bucket_occupancy_near_uniform(assignment, compression):
    t = HashedTable(100, 784, [n_buckets(78400, compression)], [0], layer=0, assignment=assignment)
    chi2, dof = occupancy_chi2(t.idx, t.buckets[0])
    assert abs(chi2 - dof) < 5 * math.sqrt(2 * dof), (chi2, dof)
    assert abs((t.sign > 0).float().mean().item() - 0.5) < 5 * 0.5 / math.sqrt(78400)
    assert t.idx.min() >= 0 and t.idx.max() < t.buckets[0]


def test_exact_ratios_and_counts():
    assert [n_buckets(78400, c) for c in (1.0, 0.5, 0.01, 0.002)] == [78400, 39200, 784, 157]
    assert n_buckets(1000, 0.0125) == 13 and n_buckets(10, 1e-6) == 1
    methods = [MethodConfig('hashednet', a) for a in (0.0, 0.9, 0.99, 0.998)]
    net = HashedMLP.from_configs(ModelConfig('hashed', (100,)), methods, [0, 1, 2, 3])
    assert net.ratios() == [[1.0, 1.0], [7840 / 78400, 100 / 1000], [784 / 78400, 10 / 1000], [157 / 78400, 2 / 1000]]
    assert net.n_params().tolist() == [79400 + 110, 7940 + 110, 794 + 110, 159 + 110]
    hb = HashedMLP.from_configs(ModelConfig('hashed', (100,), hash_bias=True), methods, [0, 1, 2, 3])
    assert hb.n_params().tolist() == [79510, 7940 + 10 + 1, 794 + 1 + 1, 159 + 1 + 1]


def test_gradient_is_signed_sum_over_bucket():
    "Autograd's bucket gradient equals Σ_{h(i,j)=k} ξ(i,j)·∂L/∂W[i,j] computed densely with explicit loops."
    g = torch.Generator().manual_seed(0)
    for assignment in ASSIGNMENTS:
        layer = HashedLinear(9, 6, [0.25, 0.6], [3, 4], layer=1, hash_bias=True, assignment=assignment)
        with torch.no_grad():
            for t in (layer.weight, layer.bias): t.values.normal_(generator=g)
        x, target = torch.randn(2, 5, 9, generator=g), torch.randn(2, 5, 6, generator=g)
        ((layer(x) - target) ** 2).sum().backward()
        W = layer.weight.materialize().detach().requires_grad_()
        b = layer.bias_vector().detach().requires_grad_()
        ((torch.baddbmm(b.unsqueeze(1), x, W.transpose(1, 2)) - target) ** 2).sum().backward()
        for table, dense in ((layer.weight, W.grad), (layer.bias, b.grad.unsqueeze(-1))):
            want = torch.zeros_like(table.values)
            for r in range(2):
                for i in range(dense.shape[1]):
                    for j in range(dense.shape[2]):
                        want[r, table.idx[r, i, j]] += table.sign[r, i, j] * dense[r, i, j]
            torch.testing.assert_close(table.values.grad, want)
            for r, k in enumerate(table.buckets): assert table.values.grad[r, k:].abs().sum() == 0   # padding


@pytest.mark.parametrize('assignment', ASSIGNMENTS)
def test_index_based_inference_matches_materialized(assignment):
    methods = [MethodConfig('hashednet', a) for a in (0.0, 0.7, 0.97)]
    net = HashedMLP.from_configs(ModelConfig('hashed', (20,), hash_bias=True), methods, [5, 6, 7], assignment=assignment)
    x = torch.randn(3, 11, 784, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(net.forward_indexed(x), net(x).detach(), rtol=1e-4, atol=1e-4)
    layer = net.layers[0]
    torch.testing.assert_close(layer.forward_indexed(x, budget=3 * 11 * 97), layer(x).detach(), rtol=1e-4, atol=1e-4)


def test_registered_and_trains_through_engine():
    from nncomp.engine.train import train_batch, toy_data
    assert model_class('hashed') is HashedMLP and MODELS['hashed'] is HashedMLP
    data = toy_data(n_train=256, n_valid=64, n_test=64)
    base = RunConfig(model=ModelConfig('hashed', (16,), hash_bias=True), train=TrainConfig(epochs=2, batch_size=32, patience=2))
    cfgs = [replace(base, method=MethodConfig('hashednet', a)) for a in (0.0, 0.5, 0.95)]
    batched = train_batch(cfgs, [0, 1, 2], data, progress=False)
    alone = train_batch(cfgs[2:], [2], data, progress=False)[0]      # another max K: other padding, same run
    assert [r['n_params'] for r in batched] == [784 * 16 + 160 + 26, 6272 + 80 + 13, 627 + 8 + 1 + 1]
    assert all(not r['failed'] and r['test_acc'] is not None for r in batched)
    assert alone['test_acc'] == pytest.approx(batched[2]['test_acc'], abs=1e-6)
    torch.testing.assert_close(alone['state']['layers.0.weight.w'][:627], batched[2]['state']['layers.0.weight.w'][:627])


@pytest.mark.parametrize('amount', [1.0, 1.5, -0.1])
def test_bad_compression_raises_before_training(amount):
    with pytest.raises(ValueError, match=r'must be in \(0, 1\]') as e:
        HashedMLP.from_configs(ModelConfig('hashed'), [MethodConfig('hashednet', amount)], [0])
    assert repr(amount) in str(e.value)
    with pytest.raises(ValueError, match=r'\(0, 1\]; got'): n_buckets(100, 1 - amount)


def test_other_bad_input():
    with pytest.raises(ValueError, match="'magnitude'"):
        HashedMLP.from_configs(ModelConfig('hashed'), [MethodConfig('magnitude', 0.5)], [0])
    with pytest.raises(ValueError, match='valid ones are xxh32, lua'):
        HashedMLP.from_configs(ModelConfig('hashed'), [MethodConfig('hashednet', 0.5)], [0], assignment='md5')
    with pytest.raises(ValueError, match='2 methods for 1 seeds'):
        HashedMLP.from_configs(ModelConfig('hashed'), [MethodConfig('hashednet', 0.5)] * 2, [0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    ij = torch.randint(0, 2**32, (2, 1000), generator=torch.Generator().manual_seed(0), dtype=torch.int64)
    assert torch.equal(xxh32_pair(ij[0].cuda(), ij[1].cuda(), 9).cpu(), xxh32_pair(ij[0], ij[1], 9))
    for assignment in ASSIGNMENTS:
        methods, cfg = [MethodConfig('hashednet', a) for a in (0.0, 0.9)], ModelConfig('hashed', (32,), hash_bias=True)
        cpu = HashedMLP.from_configs(cfg, methods, [0, 1], assignment=assignment)
        gpu = HashedMLP.from_configs(cfg, methods, [0, 1], device='cuda', assignment=assignment)
        assert torch.equal(gpu.layers[0].weight.idx.cpu(), cpu.layers[0].weight.idx)
        x = torch.randn(2, 8, 784)
        torch.testing.assert_close(gpu(x.cuda()).detach().cpu(), cpu(x).detach(), rtol=1e-3, atol=1e-3)
        torch.testing.assert_close(gpu.forward_indexed(x.cuda()).cpu(), cpu(x).detach(), rtol=1e-3, atol=1e-3)
    from nncomp.engine.train import train_batch, toy_data
    cfgs = [RunConfig(model=ModelConfig('hashed', (16,)), train=TrainConfig(epochs=1, batch_size=32, patience=1),
                      method=MethodConfig('hashednet', a)) for a in (0.0, 0.9)]
    assert not any(r['failed'] for r in train_batch(cfgs, [0, 1], toy_data(256, 64, 64), device='cuda', progress=False))


def test_lua_assignment_from_run_config():
    "ModelConfig.hash selects the original code's assignment, and it is part of the run's identity."
    from nncomp.config import ModelConfig, MethodConfig, RunConfig, run_id
    from nncomp.nets.hashednet import HashedMLP
    net = HashedMLP.from_configs(ModelConfig(kind='hashed', hidden=(8,), hash='lua'), [MethodConfig('hashednet', 0.5)], [0])
    assert {m.assignment for m in net.modules() if hasattr(m, 'assignment')} == {'lua'}
    lua, ours = (RunConfig(model=ModelConfig(kind='hashed', hash=h), method=MethodConfig('hashednet', 0.5)) for h in ('lua', 'xxh32'))
    assert run_id(lua) != run_id(ours)


def _one_step(assignment, hash_bias, by_hand, hidden=(20, 12), device='cpu'):
    "Losses and flat gradient of one training step of a mixed batch (dense net, padding, three seed groups)."
    from nncomp.engine.train import FlatState, DataOrder, autograd_step
    methods = [MethodConfig('none'), *(MethodConfig('hashednet', a) for a in (0.5, 0.9, 0.0, 0.97, 0.7))]
    seeds = [0, 0, 1, 1, 1, 2]
    net = HashedMLP.from_configs(ModelConfig('hashed', hidden, hash_bias=hash_bias), methods, seeds, device=device, assignment=assignment)
    state, order = FlatState(net), DataOrder(seeds, 300, device)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(300, 784, generator=g).to(device), torch.randint(0, 10, (300,), generator=g).to(device)
    idx = order.epoch()[:, :16]
    state.g.fill_(float('nan'))                                   # every entry must be overwritten
    loss = net.step_by_hand(x, y, idx, order.groups()) if by_hand else autograd_step(net, state, order, x, y)(idx)
    return loss, state.g.clone(), net


@pytest.mark.parametrize('assignment', ASSIGNMENTS)
@pytest.mark.parametrize('hash_bias', [False, True])
def test_step_by_hand_equals_autograd(assignment, hash_bias):
    loss, grad, _ = _one_step(assignment, hash_bias, by_hand=False)
    loss2, grad2, net = _one_step(assignment, hash_bias, by_hand=True)
    torch.testing.assert_close(loss2, loss, rtol=1e-5, atol=1e-6)
    scale = grad.abs().max()
    torch.testing.assert_close(grad2 / scale, grad / scale, rtol=0, atol=1e-5)
    w = net.layers[0].weight
    assert w.buckets[2] < w.values.shape[1] and w.values.grad[2, w.buckets[2]:].abs().sum() == 0   # padding: exactly 0
    assert all(p.grad.abs().sum() > 0 for p in net.parameters())


def test_step_by_hand_trains_like_autograd():
    from nncomp.engine.train import train_batch, toy_data
    data = toy_data(n_train=256, n_valid=64, n_test=64)
    base = RunConfig(model=ModelConfig('hashed', (16,), hash_bias=True, hash='lua'),
                     train=TrainConfig(epochs=2, batch_size=32, patience=2))
    cfgs = [replace(base, method=MethodConfig('hashednet', a)) for a in (0.0, 0.5, 0.95, 0.8)]
    seeds = [0, 0, 1, 1]
    fast, slow = (train_batch(cfgs, seeds, data, progress=False, by_hand=b) for b in (True, False))
    for f, s in zip(fast, slow):
        assert not f['failed'] and f['best_epoch'] == s['best_epoch']
        assert f['valid_acc'] == pytest.approx(s['valid_acc'], abs=1.5 / 64) and f['test_acc'] == pytest.approx(s['test_acc'], abs=1.5 / 64)
        for n, t in s['state'].items(): torch.testing.assert_close(f['state'][n], t, rtol=1e-4, atol=1e-4)
        assert f['history'][-1]['train_loss'] == pytest.approx(s['history'][-1]['train_loss'], rel=1e-4)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_step_by_hand_cuda():
    loss, grad, _ = _one_step('lua', True, by_hand=False, device='cuda')
    loss2, grad2, _ = _one_step('lua', True, by_hand=True, device='cuda')
    cpu_loss, cpu_grad, _ = _one_step('lua', True, by_hand=True)
    scale = grad.abs().max()
    torch.testing.assert_close(loss2, loss, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(grad2 / scale, grad / scale, rtol=0, atol=1e-4)
    torch.testing.assert_close(grad2.cpu() / scale.cpu(), cpu_grad / scale.cpu(), rtol=0, atol=1e-4)
