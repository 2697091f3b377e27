"""Shared pytest fixtures."""
import os, sys
from pathlib import Path
import pytest, torch

# tests/ importable everywhere a test's code runs: here, in child processes and in Dask worker processes
# (the stand-in engine is named 'standins:train_batch', resolved where a task runs).
TESTS = str(Path(__file__).resolve().parent)
if TESTS not in sys.path: sys.path.insert(0, TESTS)
os.environ['PYTHONPATH'] = os.pathsep.join(p for p in [TESTS, os.environ.get('PYTHONPATH', '')] if p)


@pytest.fixture(scope='session', autouse=True)
def nncomp_cache(tmp_path_factory):
    "Point $NNCOMP_CACHE at a folder of this test session (shared by xdist workers), never the user's cache."
    base = tmp_path_factory.getbasetemp()
    if os.environ.get('PYTEST_XDIST_WORKER'): base = base.parent  # the workers' common folder
    folder = Path(base) / 'nncomp-cache'
    folder.mkdir(exist_ok=True)
    old = os.environ.get('NNCOMP_CACHE')
    os.environ['NNCOMP_CACHE'] = str(folder)
    yield folder
    if old is None: os.environ.pop('NNCOMP_CACHE', None)
    else: os.environ['NNCOMP_CACHE'] = old


@pytest.fixture(scope='session')
def data_root():
    "The real data folder ($NNCOMP_DATA); skips the test when it is unset or missing."
    root = os.environ.get('NNCOMP_DATA')
    if not root: pytest.skip('real MNIST files needed: set NNCOMP_DATA to a folder holding mnist/ and fashion-mnist/')
    if not Path(root).is_dir(): pytest.skip(f'NNCOMP_DATA={root} is not a folder')
    return Path(root)


@pytest.fixture(autouse=True, scope='session')
def one_thread():
    "Small tensors: one torch thread per test process is faster, and does not fight the other pytest worker."
    old = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
