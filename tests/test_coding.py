"""Entropy coding (issue 11): exact round trips for every coder on random and adversarial streams, Huffman within one
bit per symbol of the entropy, relative indices with fillers, CSR / CSC byte counts equal scipy's."""
import numpy as np
import pytest
import scipy.sparse as sp
from nncomp.compress.coding import (CODERS, encode, decode, entropy_bits, relative_indices, positions, csr_bytes, csc_bytes,
                           bitmap_bytes, huffman_encode)

STREAMS = {'empty': [], 'one symbol once': [4], 'one symbol only': [3] * 500, 'two symbols': [0, 1] * 50,
           'large symbols': [0, 70000, 5, 70000], 'skewed': [0] * 990 + list(range(1, 11))}


@pytest.mark.parametrize('coder', CODERS)
@pytest.mark.parametrize('name', STREAMS)
def test_round_trip_adversarial(coder, name):
    s = np.array(STREAMS[name], np.int64)
    c = encode(s, coder)
    assert np.array_equal(decode(c), s)
    if not len(s): assert c.nbytes == 0


@pytest.mark.parametrize('coder', CODERS)
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_round_trip_random(coder, seed):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, rng.integers(2, 300), rng.integers(1, 5000))
    assert np.array_equal(decode(encode(s, coder)), s)


def test_huffman_and_ans_near_entropy():
    s = np.random.default_rng(3).geometric(0.2, 20000) - 1
    h = entropy_bits(s)
    assert h <= huffman_encode(s).nbits <= h + len(s)
    assert encode(s, 'ans').nbits <= h * 1.01 + 64
    assert encode(s, 'ans').nbits < encode(s, 'fixed').nbits


def test_bad_symbols_and_coder_are_clear_errors():
    with pytest.raises(ValueError, match="coder='rle' is not allowed; allowed: fixed, huffman, ans"): encode([1], 'rle')
    with pytest.raises(ValueError, match="non-negative integers"): encode([0.5, 1.0])


@pytest.mark.parametrize('bits', [1, 2, 3, 5, 8])
@pytest.mark.parametrize('density', [0.0, 0.01, 0.3, 1.0])
def test_relative_indices_round_trip(bits, density):
    m = np.random.default_rng(bits).random((40, 30)) < density
    skips, filler = relative_indices(m, bits)
    assert skips.max(initial=0) <= 2 ** bits - 1
    assert np.array_equal(positions(skips)[~filler], np.flatnonzero(m))
    assert (~filler).sum() == m.sum()


def test_relative_indices_hand_example():
    m = np.zeros(12, bool); m[[0, 9, 11]] = True                  # 2-bit gaps: at most 3 zeros skipped
    skips, filler = relative_indices(m, 2)                        # 8 zeros before 9: fillers at 4 and 8
    assert skips.tolist() == [0, 3, 3, 0, 1] and filler.tolist() == [False, True, True, False, False]
    assert positions(skips).tolist() == [0, 4, 8, 9, 11]


def test_csr_csc_bytes_equal_scipy():
    w = np.random.default_rng(0).random((17, 11)).astype(np.float32) * (np.random.default_rng(1).random((17, 11)) < 0.2)
    for f, fmt in ((csr_bytes, sp.csr_matrix), (csc_bytes, sp.csc_matrix)):
        s = fmt(w); assert f(w != 0) == s.data.nbytes + s.indices.nbytes + s.indptr.nbytes
    assert bitmap_bytes(17 * 11) == 24
