"""Stored bytes (issue 11): file -> nn.Module -> equal logits for every encoding, adversarial layers (all pruned, empty,
one symbol), the ledger adds up to the file size, byte counts of a hand-made layer, HashedNet = K values + seeds,
ConvNet = dense weights; the post-training pipeline on any module (Taylor vs finite difference, torch.prune masks)."""
import json, math
import numpy as np
import pytest, torch
from torch import nn
import torch.nn.functional as F
from torch.nn.utils import prune
from nncomp.config import ModelConfig, MethodConfig
from nncomp.compress.quantize import share_weights
from nncomp.compress.ledger import (Encoding, POSITIONS, write_compressed, read_compressed, ledger, by_category, compare,
                           run_as_module, encode_weight, decode_weight, hashed_size, dense_size, to_bytes)
from nncomp.compress.posttrain import layers_of, saliencies, prune_layers, share_layers, compress, PostTrain, fit
from nncomp.compress.coding import CODERS


def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Unflatten(1, (1, 10, 10)), nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(100, 16), nn.Tanh(), nn.Linear(16, 10))


@pytest.mark.parametrize('coder', CODERS)
@pytest.mark.parametrize('pos', POSITIONS)
def test_file_to_module_equal_logits(tmp_path, coder, pos):
    net = _net(); prune.l1_unstructured(net[1], 'weight', amount=0.5)
    prune.l1_unstructured(net[5], 'weight', amount=0.95); m = net[5].weight_mask.clone(); prune.remove(net[5], 'weight')
    share_weights(net[5], 16, m); share_weights(net[7], 2)
    p = write_compressed(net, tmp_path / 'n.safetensors', Encoding(coder, pos, 3, coder))
    back = read_compressed(p)
    x = torch.randn(9, 100)
    with torch.no_grad(): assert torch.equal(back(x), net(x))
    assert len(dict(back.named_parameters())) == 6 and not prune.is_pruned(back)   # plain weights and biases only
    assert ledger(p)['bytes'].sum() == p.stat().st_size == by_category(p)['total']


@pytest.mark.parametrize('pos', POSITIONS)
@pytest.mark.parametrize('case', ['all pruned', 'empty', 'one symbol'])
def test_adversarial_layers(pos, case):
    if case == 'all pruned': w, mask, cb, idx = torch.zeros(6, 5), torch.zeros(6, 5), torch.tensor([0.1, 0.2]), torch.zeros(6, 5, dtype=torch.long)
    elif case == 'empty': w, mask, cb, idx = torch.zeros(0, 5), None, None, None
    else: w, mask, cb, idx = torch.full((6, 5), 0.5), None, torch.tensor([0.5, 1.0]), torch.zeros(6, 5, dtype=torch.long)
    for coder in CODERS:
        a, meta = encode_weight(w, mask, cb, idx, Encoding(coder, pos, 2, coder))
        assert torch.equal(decode_weight(a, meta), w)


def test_all_pruned_network_file(tmp_path):
    net = nn.Sequential(nn.Linear(8, 4)); prune.custom_from_mask(net[0], 'weight', torch.zeros(4, 8, dtype=torch.bool))
    p = write_compressed(net, tmp_path / 'z.safetensors')
    x = torch.randn(3, 8)
    with torch.no_grad(): assert torch.equal(read_compressed(p)(x), net(x))
    assert by_category(p)['values'] == 0


def test_hand_made_layer_byte_counts(tmp_path):
    lin = nn.Linear(8, 2)
    with torch.no_grad(): lin.weight.zero_(); lin.weight.view(-1)[[0, 3, 15]] = torch.tensor([0.5, -0.5, 0.5])
    share_weights(lin, 2)
    # bitmap: 16 bits = 2 bytes; codes: 3 symbols, 1 bit each (fixed) = 1 byte + 1-byte table; codebook 8; bias 8
    p = write_compressed(nn.Sequential(lin), tmp_path / 'h.safetensors', Encoding('fixed', 'bitmap'))
    c = by_category(p)
    assert (c['indices'], c['values'], c['code tables'], c['codebooks'], c['biases'], c['hash seeds']) == (2, 1, 1, 8, 8, 0)
    assert c['total'] == p.stat().st_size == sum(c[k] for k in c if k != 'total')
    cmp = compare(p)
    assert cmp['dense_fp32'] == 4 * 16 + 8 and cmp['csr_fp32'] == 3 * 4 + 3 * 4 + 3 * 4 + 8 and cmp['csc_fp32'] == 12 + 12 + 9 * 4 + 8


def test_per_layer_encodings(tmp_path):
    net = _net(); share_weights(net[5], 4)
    p = write_compressed(net, tmp_path / 'pl.safetensors', {'1': Encoding(positions='dense'), '5': Encoding('ans', 'gaps', 8, 'ans')})
    led = ledger(p).set_index(['layer', 'item'])['bytes']
    assert ('1', 'values') in led.index and ('5', 'codes') in led.index and ('7', 'skips') in led.index


def test_hashednet_size_is_K_values_plus_seeds(tmp_path):
    from nncomp.nets.hashednet import HashedMLP
    hm = HashedMLP.from_configs(ModelConfig(kind='hashed', hidden=(30, 20)), [MethodConfig(name='hashednet', amount=0.9)], [3])
    seq = run_as_module(hm)
    x = torch.randn(4, 784)
    with torch.no_grad():
        torch.testing.assert_close(seq(x), hm(x.expand(1, 4, 784))[0])
        p = write_compressed(seq, tmp_path / 'h.safetensors'); torch.testing.assert_close(read_compressed(p)(x), seq(x))
    c, K = by_category(p), int(hm.n_params()[0])
    assert c['values'] + c['biases'] == 4 * K and c['hash seeds'] == 4 * 3
    assert hashed_size(type('C', (), {'model': ModelConfig(kind='hashed', hidden=(30, 20))}), {'n_params': K}) == c['total'] - c['metadata']


def test_convnet_size_is_dense_weights(tmp_path):
    from nncomp.nets.convnet import ConvNet
    cn = ConvNet.from_configs(ModelConfig(kind='conv', channels=2, kernel=5, stride=2, pool=2), [MethodConfig()], [0]).eval()
    seq = run_as_module(cn); x = torch.randn(4, 784)
    with torch.no_grad(): torch.testing.assert_close(seq(x), cn(x.expand(1, 4, 784))[0])
    p = write_compressed(seq, tmp_path / 'c.safetensors', Encoding(positions='dense'))
    c = by_category(p)
    assert c['values'] + c['biases'] == dense_size(None, {'n_params': int(cn.n_params()[0])}) and c['indices'] == 0


def test_model_without_layers_is_clear_error():
    with pytest.raises(ValueError, match="model='Sequential' is not allowed; allowed: a module with at least one nn.Linear or nn.Conv2d layer"):
        prune_layers(nn.Sequential(nn.ReLU()), 0.5)
    with pytest.raises(ValueError, match="model='GRU' is not allowed"): saliencies(nn.GRU(3, 3))


def test_taylor_saliency_matches_finite_difference():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(1, 2, 2), nn.Tanh(), nn.Flatten(), nn.Linear(8, 3)).double()
    x, y = torch.randn(10, 1, 3, 3, dtype=torch.float64), torch.randint(0, 3, (10,))
    s = saliencies(net, 'taylor', x, y)
    loss = lambda: F.cross_entropy(net(x), y).item()
    for name, idx in [('0', (1, 0, 1, 1)), ('3', (2, 5)), ('3', (0, 0))]:
        w = dict(net.named_modules())[name].weight.data; w0, h = w[idx].item(), 1e-6
        w[idx] = w0 + h; up = loss(); w[idx] = w0 - h; down = loss(); w[idx] = w0
        assert s[name][idx].item() == pytest.approx(abs((up - down) / (2 * h) * w0), rel=1e-6, abs=1e-12)


def test_prune_masks_match_torch_prune():
    a, b = _net(), _net()
    prune_layers(a, 0.3)
    for n, m in layers_of(b).items(): prune.l1_unstructured(m, 'weight', amount=m.weight.numel() - round(0.3 * m.weight.numel()))
    for n in layers_of(a): assert torch.equal(dict(a.named_modules())[n].weight_mask, dict(b.named_modules())[n].weight_mask)


def test_pipeline_on_any_module(tmp_path):
    torch.manual_seed(0)
    class Odd(nn.Module):          # not a Sequential: layers in attributes, a custom forward
        def __init__(self): super().__init__(); self.f, self.g = nn.Linear(6, 12), nn.Linear(12, 3)
        def forward(self, x): return self.g(torch.sin(self.f(x)))
    x, y = torch.randn(200, 6), torch.randint(0, 3, (200,))
    data = type('D', (), {'train': type('S', (), {'x': x, 'y': y}), 'test': type('S', (), {'x': x[:50], 'y': y[:50]})})
    model = fit(Odd(), x, y, epochs=5, lr=1e-2)
    r = compress(model, data, PostTrain(keep=0.5, bits=2, gap_bits=3, saliency='taylor'), tmp_path)
    assert r['error_file'] == r['error_final'] and r['weights_kept'] == 6 * 6 + 18 and r['param_ratio'] == 2
    assert (tmp_path / 'huffman.safetensors').exists() and (tmp_path / 'ans.safetensors').exists()


def test_plain_copy_of_pruned_module_and_coded_transform():
    from nncomp.compress.posttrain import plain_copy, huffman_coded, ans_coded, n_weights
    torch.manual_seed(0)
    x, y = torch.randn(120, 10), torch.randint(0, 3, (120,))
    data = type('D', (), {'train': type('S', (), {'x': x, 'y': y}), 'test': type('S', (), {'x': x[:40], 'y': y[:40]})})
    m = fit(nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3)), x, y, epochs=3, lr=1e-2)
    prune_layers(m, 0.5)
    c = plain_copy(m)
    assert not prune.is_pruned(c) and n_weights(c) == n_weights(m) == (52, 104)
    with torch.no_grad(): assert torch.equal(c(x), m(x))
    r = huffman_coded(c, data, bits=2, centroid_epochs=0)
    assert r['weights_kept'] == 52 and r['stored_bytes'] > 0
    assert ans_coded(plain_copy(m), data, bits=2, centroid_epochs=0)['weights_kept'] == 52


def test_registry_coding_family_and_ledger_size_rules():
    from nncomp.methods import in_family, config_names, pruning_names, method_of
    from nncomp.compress.ledger import stored_size, SIZE_RULES
    from types import SimpleNamespace as NS
    assert in_family('pruning') == ('magl2', 'magl1', 'obd', 'taylor', 'random')
    assert in_family('coding') == ('dc-huffman', 'dc-ans', *(f'sparse-{m}' for m in in_family('pruning')))
    assert config_names() == ('none', 'magnitude', 'obd', 'taylor', 'random', 'hashednet')
    assert pruning_names() == ('magnitude', 'obd', 'taylor', 'random')
    fc = NS(model=NS(kind='fc', hidden=(100,)), method=NS(name='magnitude', amount=0.9), train=NS(reg='l2'))
    assert method_of(fc) == 'magl2'
    assert math.isnan(SIZE_RULES['measured'](fc, {'n_params': 10}))
    hashed = NS(model=NS(kind='hashed', hidden=(100,)), method=NS(name='hashednet', amount=0.9), train=NS(reg='l2'))
    assert stored_size(hashed, {'n_params': 8050}) == 4 * 8050 + 8


def test_low_rank_layers_store_their_factors(tmp_path):
    from nncomp.compress.lowrank import low_rank, lowrank_params
    net = _net(); low_rank(net[1], 2); low_rank(net[5], 4)
    p = write_compressed(net, tmp_path / 'lr.safetensors')
    x = torch.randn(5, 100)
    with torch.no_grad(): assert torch.equal(read_compressed(p)(x), net(x))
    led = ledger(p).set_index(['layer', 'item'])['bytes']
    assert led[('5', 'factor_a')] + led[('5', 'factor_b')] == 4 * lowrank_params(16, 100, 4)
    assert led[('1', 'factor_a')] + led[('1', 'factor_b')] == 4 * lowrank_params(4, 9, 2)


@pytest.mark.parametrize('pos', POSITIONS)
def test_pruned_low_rank_factors_stored_sparse(tmp_path, pos):
    from nncomp.compress.lowrank import low_rank_layers, prune_factors, factor_counts
    net = _net(); low_rank_layers(net, {'1': 2, '5': 4, '7': 3}); prune_factors(net, {'1': 1, '5': 0.25, '7': 0.5})
    p = write_compressed(net, tmp_path / 'plr.safetensors', Encoding(positions=pos, gap_bits=3))
    x = torch.randn(5, 100)
    with torch.no_grad(): torch.testing.assert_close(read_compressed(p)(x), net(x))
    led = ledger(p).set_index(['layer', 'item'])['bytes']
    assert led[('1', 'factor_a')] + led[('1', 'factor_b')] == 4 * (4 + 9) * 2            # keep 1: dense factors
    alive = factor_counts(net)[0] - (4 + 9) * 2                                          # alive entries of layers 5 and 7
    stored = sum(led[(l, f)] for l in ('5', '7') for f in ('factor_a', 'factor_b')) // 4
    if pos == 'dense': assert stored == factor_counts(net)[1] - (4 + 9) * 2             # every entry, pruned ones as 0
    elif pos == 'bitmap': assert stored == alive
    else: assert stored >= alive                                                          # alive entries and fillers
    assert ledger(p)['bytes'].sum() == p.stat().st_size


def test_lowrank_prune_pipeline_bad_input():
    from types import SimpleNamespace as NS
    from nncomp.compress.lowrank_prune import lowrank_prune, LowRankPrune
    data = NS(train=NS(x=torch.randn(20, 100), y=torch.randint(0, 10, (20,))), test=NS(x=torch.randn(8, 100), y=torch.randint(0, 10, (8,))))
    with pytest.raises(ValueError, match=r'rank=10 is not allowed; allowed: an integer from 1 to min\(n, m\) = 4'): lowrank_prune(_net(), data, LowRankPrune(rank=10))
    with pytest.raises(ValueError, match=r'keep=0 is not allowed; allowed: a fraction in \(0, 1\]'): lowrank_prune(_net(), data, LowRankPrune(rank=2, keep=0))
    with pytest.raises(ValueError, match=r"model='Sequential' is not allowed"): lowrank_prune(nn.Sequential(nn.ReLU()), data)


def test_non_contiguous_weights_are_written_correctly(tmp_path):
    lin = nn.Linear(6, 4)
    with torch.no_grad(): lin.weight = nn.Parameter(torch.randn(6, 4).t())     # a transposed view
    assert not lin.weight.is_contiguous()
    p = write_compressed(nn.Sequential(lin), tmp_path / 't.safetensors', Encoding(positions='dense'))
    from nncomp.compress.ledger import decoded_state
    assert torch.equal(decoded_state(p)['0.weight'], lin.weight.detach())   # (logits may differ in the last bit: another GEMM path)


# Integrity (issue 27 item 11): a checksum of the content, sizes bounded by the file, every error names the file.
from nncomp.compress.ledger import CompressedFileError, FORMAT, file_bytes, read_header, _open, _st


def _small():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))
    prune.l1_unstructured(net[0], 'weight', amount=0.5)
    share_weights(net[2], 2)
    return net


def _refused(src):
    try: read_compressed(src)
    except CompressedFileError: return True
    return False


def test_every_flipped_bit_and_byte_is_detected():
    raw = to_bytes(_small())
    missed = [(i, m) for i in range(len(raw)) for m in (1, 2, 4, 8, 16, 32, 64, 128, 255)
              if not _refused(raw[:i] + bytes([raw[i] ^ m]) + raw[i + 1:])]
    assert not missed, missed[:10]


def test_truncated_file_names_the_file(tmp_path):
    raw, p = to_bytes(_small()), tmp_path / 'cut.safetensors'
    for k in range(len(raw)):
        p.write_bytes(raw[:k])
        with pytest.raises(CompressedFileError, match=f'cannot read compressed network file {p}'): read_compressed(p)
    for f in (ledger, by_category, compare, read_header):
        with pytest.raises(CompressedFileError, match=str(p)): f(p)


def _crafted(layers, arch=None, arrays=None):
    arrays = arrays or {'0.values': np.zeros(1, np.float32)}
    return file_bytes(arrays, {'format': FORMAT, 'arch': arch, 'layers': layers})


_GAPS = {'kind': 'layer', 'positions': 'gaps', 'shared': False, 'gap_bits': 8, 'skips_coder': 'ans', 'skips_count': 0}


@pytest.mark.parametrize('case', ['shape', 'arch', 'hashed', 'lowrank', 'all pruned', 'ans n', 'huffman n', 'fixed n'])
def test_crafted_huge_sizes_refused_quickly(case, tmp_path):
    import time, tracemalloc
    big = [200000, 200000]
    if case == 'shape': raw = _crafted({'0': {'kind': 'layer', 'shape': big, 'positions': 'dense', 'shared': False}})
    elif case == 'arch':
        linear = {'type': 'linear', 'in': big[0], 'out': big[1], 'bias': True}
        raw = _crafted({'0': {'kind': 'tensor', 'shape': [1]}}, [linear])
    elif case == 'hashed':
        raw = _crafted({'0': {'kind': 'hashed', 'n_in': big[0], 'n_out': big[1], 'layer': 0, 'hashed_bias': False}},
                       arrays={'0.values': np.zeros(2, np.float32), '0.seed': np.zeros(1, np.uint32)})
    elif case == 'lowrank':    # two 1-column factors of 10,000 entries whose product has 10⁸
        raw = _crafted({'0': {'kind': 'lowrank', 'shape': [10000, 10000], 'rank': 1}},
                       arrays={'0.factor_a': np.zeros((10000, 1), np.float32),
                               '0.factor_b': np.zeros((1, 10000), np.float32)})
    elif case == 'all pruned':
        raw = _crafted({'0': _GAPS | {'shape': big, 'skips_n': 0, 'skips_nbits': 0}},
                       arrays={'0.values': np.zeros(0, np.float32), '0.skips': np.zeros(0, np.uint8),
                               '0.skips_table': np.zeros(0, np.uint8)})
    else:                      # a stream claims 10⁹ symbols in a 3 × 3 layer, or more than its bytes hold
        coder = case.split()[0]
        lm = _GAPS | {'shape': [3, 3], 'skips_coder': coder, 'skips_n': 10 ** 9, 'skips_nbits': 32, 'skips_count': 1}
        raw = _crafted({'0': lm}, arrays={'0.values': np.zeros(2, np.float32), '0.skips': np.zeros(4, np.uint8),
                                          '0.skips_table': np.array([0, 10 ** 9], np.uint32)})
    p = tmp_path / 'crafted.safetensors'; p.write_bytes(raw)
    assert len(raw) < (10 ** 5 if case == 'lowrank' else 1000)
    tracemalloc.start(); t = time.perf_counter()
    with pytest.raises(CompressedFileError, match=f'cannot read compressed network file {p}: .*(not allowed|asks for)'):
        read_compressed(p)
    peak = tracemalloc.get_traced_memory()[1]; tracemalloc.stop()
    assert time.perf_counter() - t < 1 and peak < 10 * 2 ** 20, (time.perf_counter() - t, peak)


def test_missing_entries_and_bad_values_name_the_file(tmp_path):
    raw = to_bytes(_small()); _, _, _, meta, arrays = _open(raw)
    p = tmp_path / 'm.safetensors'
    no_codes = {k: v for k, v in arrays.items() if k != '2.codes'}
    p.write_bytes(file_bytes(no_codes, meta))
    with pytest.raises(CompressedFileError, match=f"{p}: corrupt or crafted layer '2': missing entry 'codes'"):
        read_compressed(p)
    bad = json.loads(json.dumps(meta)); bad['layers']['0']['skips_n'] = 'many'
    p.write_bytes(file_bytes(arrays, bad))
    with pytest.raises(CompressedFileError, match=f"{p}: corrupt or crafted layer '0': skips_n='many' is not allowed"):
        read_compressed(p)
    p.write_bytes(b'\x08' + bytes(7) + b'not json')
    with pytest.raises(CompressedFileError, match=f'{p}: corrupt'): read_compressed(p)


def test_old_format_file_reads_without_checksum():
    net = _small(); raw = to_bytes(net); _, _, _, meta, arrays = _open(raw)
    old = _st(arrays, {'format': 'nncomp-ledger/1', 'arch': meta['arch'], 'layers': meta['layers']})
    x = torch.randn(3, 5)
    with torch.no_grad(): assert torch.equal(read_compressed(old)(x), net(x))
    rows = lambda led: sorted(led.itertuples(index=False))
    new = ledger(raw)
    assert rows(ledger(old)) == rows(new[new.item != 'checksum']) and new['bytes'].sum() == len(raw)
    assert len(raw) - len(old) == new.set_index('item')['bytes']['checksum']
    assert by_category(raw)['metadata'] - by_category(old)['metadata'] == len(raw) - len(old)


def test_committed_results_still_read():
    from pathlib import Path
    files = sorted(Path(__file__).resolve().parents[1].glob('results/*/derived/*/*.safetensors'))[:6]
    if not files: pytest.skip('no committed coded files')
    for f in files:
        assert read_header(f)['format'] == 'nncomp-ledger/1'
        stored = json.loads((f.parent / 'metrics.json').read_text())['stored_bytes']
        assert ledger(f)['bytes'].sum() == f.stat().st_size == stored
        read_compressed(f)
