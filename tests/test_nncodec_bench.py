"""NNCodec anchor (issue 11 §5): a clear error without its environment; a round trip when $NNCODEC_PYTHON is set."""
import os
import pytest, torch
from nncomp.tools.nncodec_bench import nncodec_python, nncodec_roundtrip, at_equal_error


def test_missing_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.delenv('NNCODEC_PYTHON', raising=False)
    with pytest.raises(ValueError, match="NNCODEC_PYTHON=None is not allowed; allowed: the path of a Python interpreter"):
        nncodec_python()


def test_at_equal_error_picks_fewest_bytes():
    rows = [{'bytes': 10, 'error': 0.05}, {'bytes': 20, 'error': 0.01}, {'bytes': 30, 'error': 0.0}]
    assert at_equal_error(rows, 0.02)['bytes'] == 20 and at_equal_error(rows, -1) is None


@pytest.mark.skipif(not os.environ.get('NNCODEC_PYTHON'), reason='needs an NNCodec environment ($NNCODEC_PYTHON)')
def test_nncodec_round_trip(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    state = {'w': torch.randn(20, 30, generator=torch.Generator().manual_seed(0)), 'b': torch.zeros(20)}
    n, dec = nncodec_roundtrip(state, -38)
    assert 0 < n < 4 * 620 and set(dec) == set(state)
    assert (dec['w'] - state['w']).abs().max() < 0.05
    assert list(tmp_path.iterdir()) == []          # nothing left in the working folder
