"""Quantization and low rank (issue 11): r on hand examples, k-means sharing with trained centroids (gradient = sum of
the cluster's weight gradients), uniform b-bit codes, rank-d error = tail singular values, clear errors for bad input."""
import math
import pytest, torch
from torch import nn
from torch.nn.utils import parametrize
from nncomp.compress.quantize import (sharing_rate, uniform_quantize, uniform_dequantize, kmeans_1d, nearest, share_weights,
                             uniform_weights, codebook, SharedWeight)
from nncomp.compress.lowrank import truncated_svd, lowrank_params, low_rank, factors


@pytest.mark.parametrize('n,k,b,r', [(16, 4, 32, 3.2), (1000, 16, 32, 32000 / 4512), (2, 2, 8, 16 / 18), (8, 256, 32, 256 / (64 + 8192))])
def test_sharing_rate_hand_examples(n, k, b, r):
    assert sharing_rate(n, k, b) == pytest.approx(r)


@pytest.mark.parametrize('k', [1, 0, -3, 2.5, True])
def test_k_below_two_is_a_clear_error(k):
    with pytest.raises(ValueError, match=r"k=.* is not allowed; allowed: an integer >= 2"): sharing_rate(10, k)
    with pytest.raises(ValueError, match=r"k=.* is not allowed"): kmeans_1d(torch.randn(5), k)
    with pytest.raises(ValueError, match=r"k=.* is not allowed"): share_weights(nn.Linear(3, 3), k)


@pytest.mark.parametrize('bits', [0, 33, -1, 8.0])
def test_bits_outside_1_32_is_a_clear_error(bits):
    with pytest.raises(ValueError, match=r"bits=.* is not allowed; allowed: an integer from 1 to 32"): uniform_quantize(torch.randn(4), bits)


@pytest.mark.parametrize('bits', [1, 3, 8, 16, 32])
def test_uniform_codes_in_range_and_error_half_a_step(bits):
    w = torch.randn(500, generator=torch.Generator().manual_seed(bits))
    c, lo, step = uniform_quantize(w, bits)
    assert 0 <= c.min() and c.max() <= 2 ** bits - 1 and c.max() == 2 ** bits - 1
    assert (uniform_dequantize(c, lo, step) - w).abs().max() <= step / 2 + 1e-6


def test_kmeans_is_a_fixed_point_of_lloyd():
    w = torch.randn(2000, generator=torch.Generator().manual_seed(0))
    c, i = kmeans_1d(w, 8)
    assert torch.equal(i, nearest(w, c))
    for j in i.unique(): assert c[j] == pytest.approx(w[i == j].mean().item(), abs=1e-5)


def test_centroid_gradient_is_sum_of_weight_gradients():
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 4, 3); mask = torch.rand(4, 2, 3, 3) > 0.4
    p = share_weights(conv, 5, mask)
    x = torch.randn(3, 2, 6, 6)
    conv(x).square().sum().backward()
    w = conv.weight.detach().clone().requires_grad_(True)
    torch.nn.functional.conv2d(x, w, conv.bias.detach()).square().sum().backward()
    expected = torch.zeros(5).index_add_(0, p.index[mask], w.grad[mask])
    torch.testing.assert_close(codebook(conv).grad, expected)
    assert (conv.weight.detach()[~mask] == 0).all()


def test_shared_layer_stores_codebook_and_indices_only():
    lin = nn.Linear(5, 3); share_weights(lin, 4)
    names = {n for n, _ in lin.named_parameters()}
    assert names == {'bias', 'parametrizations.weight.original'}
    assert {'parametrizations.weight.0.index', 'parametrizations.weight.0.mask'} <= set(lin.state_dict())
    assert lin.weight.detach().unique().numel() <= 4


def test_uniform_weights_trainable_codebook_too_wide_is_error():
    with pytest.raises(ValueError, match="bits=20 is not allowed"): uniform_weights(nn.Linear(2, 2), 20)


@pytest.mark.parametrize('shape,d', [((30, 20), 1), ((30, 20), 7), ((30, 20), 20), ((5, 40), 5)])
def test_rank_d_error_equals_tail_singular_values(shape, d):
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(d), dtype=torch.float64)
    a, b = truncated_svd(w, d)
    s = torch.linalg.svdvals(w)
    assert torch.linalg.norm(w - a @ b).item() == pytest.approx(s[d:].square().sum().sqrt().item(), abs=1e-9)
    assert a.numel() + b.numel() == lowrank_params(*shape, d)


@pytest.mark.parametrize('d', [0, 21, 100, 2.0])
def test_rank_above_min_is_a_clear_error(d):
    with pytest.raises(ValueError, match=r"rank=.* is not allowed; allowed: an integer from 1 to min\(n, m\) = 20"):
        truncated_svd(torch.randn(30, 20), d)


def test_low_rank_parametrization_fine_tunes():
    torch.manual_seed(0); lin = nn.Linear(12, 9); low_rank(lin, 3)
    a, b = factors(lin)
    opt = torch.optim.SGD(lin.parameters(), lr=0.1)
    x, y = torch.randn(32, 12), torch.randn(32, 9)
    before = ((lin(x) - y) ** 2).mean().item()
    for _ in range(20): opt.zero_grad(); ((lin(x) - y) ** 2).mean().backward(); opt.step()
    assert ((lin(x) - y) ** 2).mean().item() < before
    assert torch.linalg.matrix_rank(lin.weight.detach()) <= 3


# The survey's quantizers (issue 29): PWS and ECSQ as registry entries beside uniform and k-means, usable after pruning,
# per layer type, through the prune -> share -> code pipeline, and read back from the ledger's file.
from nncomp.compress.quantize import (QUANTIZERS, quantizer, pws_assign, pws_1d, ecsq_lloyd, ecsq_1d, ecsq_assign,
                                      index_entropy, linear_init, per_type)
from nncomp.compress.posttrain import prune_layers, share_layers, fit, compress, PostTrain


def test_unknown_quantizer_is_a_clear_error():
    with pytest.raises(ValueError, match=r"method='lloyd' is not allowed; allowed: uniform, kmeans, pws, ecsq"):
        quantizer('lloyd')


def test_pws_unbiased_and_brackets_by_hand():
    c = torch.tensor([-1.0, 0.0, 0.5, 2.0]); w = torch.tensor([-0.7, 0.1, 0.25, 1.9])
    i = pws_assign(w.repeat(40_000, 1), c, torch.Generator().manual_seed(5))
    torch.testing.assert_close(c[i].mean(0), w, atol=0.012, rtol=0)
    for col, allowed in enumerate([{0, 1}, {1, 2}, {1, 2}, {2, 3}]): assert set(i[:, col].tolist()) == allowed
    assert pws_assign(torch.tensor([-3.0, 7.0]), c, torch.Generator().manual_seed(0)).tolist() == [0, 3]


def test_pws_same_seed_same_indices():
    w = torch.randn(5000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(pws_1d(w, 16, seed=3)[1], pws_1d(w, 16, seed=3)[1])
    assert not torch.equal(pws_1d(w, 16, seed=3)[1], pws_1d(w, 16, seed=4)[1])


def test_ecsq_hand_case_and_kmeans_at_lambda_zero():
    c, i = ecsq_lloyd(torch.tensor([0., 1., 2., 6., 10.]), torch.tensor([0., 5., 10.]), 20.0)   # by hand: 15_quantize
    torch.testing.assert_close(c, torch.tensor([2.25, 10.0])); assert i.tolist() == [0, 0, 0, 0, 1]
    w = torch.randn(3000, generator=torch.Generator().manual_seed(7))
    for k in (3, 8):
        (ck, ik), (ce, ie) = kmeans_1d(w, k), ecsq_lloyd(w, linear_init(w, k), 0.0)
        assert torch.equal(ik, ie); torch.testing.assert_close(ce, ck)


def test_ecsq_envelope_equals_brute_force_argmin():
    g = torch.Generator().manual_seed(11)
    for _ in range(100):
        k = int(torch.randint(2, 40, (1,), generator=g))
        c, bits = (3 * torch.randn(k, generator=g)).sort().values, 8 * torch.rand(k, generator=g)
        lam, x = 2 * float(torch.rand(1, generator=g)), 4 * torch.randn(300, generator=g)
        assert torch.equal(ecsq_assign(x, c, bits, lam), ((x[:, None] - c) ** 2 + lam * bits).argmin(1))


@pytest.mark.parametrize('k', [2, 4, 16, 32])
def test_ecsq_reaches_the_wanted_count_with_less_entropy_than_kmeans(k):
    w = torch.randn(4000, generator=torch.Generator().manual_seed(k)) ** 3    # heavy tails
    c, i = ecsq_1d(w, k)
    assert len(c) == k == i.unique().numel()
    assert index_entropy(i) < index_entropy(kmeans_1d(w, k)[1])


@pytest.mark.parametrize('method', list(QUANTIZERS))
def test_every_quantizer_after_pruning_per_layer_type(method):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Unflatten(1, (1, 6, 6)), nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
    x, y = torch.randn(64, 36), torch.randint(0, 3, (64,))
    masks = prune_layers(net, 0.5)
    assert share_layers(net, per_type(net, 3, 2), method) == {'1': 8, '4': 4}
    fit(net, x, y, epochs=2, lr=1e-2)                                          # the centroid fine-tuning
    for n, k in (('1', 8), ('4', 4)):
        m = net.get_submodule(n); w = m.weight.detach()
        assert (w[~masks[n]] == 0).all() and w[masks[n]].unique().numel() <= k and codebook(m).numel() <= k
        assert set(dict(m.named_parameters())) == {'bias', 'parametrizations.weight.original'}


@pytest.mark.parametrize('method', ['pws', 'ecsq'])
def test_pipeline_writes_and_reads_back_the_new_quantizers(tmp_path, method):
    torch.manual_seed(0)
    x, y = torch.randn(200, 6), torch.randint(0, 3, (200,))
    data = type('D', (), {'train': type('S', (), {'x': x, 'y': y}), 'test': type('S', (), {'x': x[:50], 'y': y[:50]})})
    model = fit(nn.Sequential(nn.Linear(6, 24), nn.ReLU(), nn.Linear(24, 3)), x, y, epochs=5, lr=1e-2)
    st = {}
    r = compress(model, data, PostTrain(keep=0.5, bits={'0': 3, '2': 2}, quantizer=method, gap_bits=3), tmp_path, stages=st)
    assert r['error_file'] == r['error_final'] and r['weights_kept'] == 72 + 36
    assert st['compressed'][0].weight.detach().unique().numel() <= 8 + 1       # compress works on a copy of `model`
