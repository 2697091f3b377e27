"""The benchmark command lines (09_bench, 09a_bench_tables): a bad argument stops before any work, with a message that
names the value and what is allowed."""
import subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]

@pytest.mark.parametrize('argv, message', [
    (['nncomp.tools.bench', '--runs', '0'], '--runs=0 is not allowed; allowed: a positive integer'),
    (['nncomp.tools.bench', '--hidden', '100,x'], "--hidden='100,x' is not allowed; allowed: positive integers"),
    (['nncomp.tools.bench', '--devices', 'tpu'], "device='tpu' is not allowed; allowed: cpu, cuda, cuda:N"),
    (['nncomp.tools.bench_tables', 'format-timings', '--ks', '2,x'], "--ks='2,x' is not allowed; allowed: comma-separated positive integers"),
    (['nncomp.tools.bench_tables', 'format-timings', '--networks', 'VGG'], "--networks='VGG' is not allowed; allowed: FC-100, FC-30, LeNet-300-100"),
    (['nncomp.tools.bench_tables', 'format-timings', '--sparsities', '1'], "--sparsities='1' is not allowed; allowed: comma-separated numbers in [0, 1)"),
    (['nncomp.tools.bench_tables', 'precision-check', '--seeds', '0'], '--seeds=0 is not allowed; allowed: a positive integer'),
    (['nncomp.tools.bench_tables', 'precision-check', '--epochs', 'ten'], "--epochs='ten' is not allowed; allowed: a positive integer"),
])
def test_bad_argument(argv, message, tmp_path):
    r = subprocess.run([sys.executable, '-m', *argv, *(['--out', str(tmp_path/'t.csv')] if 'bench_tables' in argv[0] else [])],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert not (tmp_path/'t.csv').exists()
