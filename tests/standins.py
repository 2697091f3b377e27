"""Test-only stand-ins for the sweep machinery: a made-up trainer with no data (importable as `standins` from tests/)."""
import hashlib, os, time
from pathlib import Path
import torch
from nncomp.config import RunConfig, run_id

STANDIN = {'train': 'standins:train_batch', 'key': 'standins:batch_key', 'load': 'standins:no_data'}

def no_data(data, device=None):
    "The stand-in trainer needs no data."
    return None

def batch_key(cfg:RunConfig) -> tuple:
    "Runs of one dataset and model kind train together."
    return (cfg.data, cfg.model.kind, cfg.train.epochs)

def barrier(path:str, n:str, timeout:float=60):
    "Wait until `n` processes have reached their first training (each appends its pid to `path`)."
    me = str(os.getpid())
    with open(path, 'a+') as f:
        f.seek(0)
        if me not in f.read().split(): f.write(me + '\n')
    deadline = time.time() + timeout
    while len(Path(path).read_text().split()) < int(n) and time.time() < deadline: time.sleep(0.01)

def train_batch(cfgs:list, seeds:list, data=None, device=None, progress=False) -> list[dict]:
    "Stand-in for `nncomp.engine.train.train_batch`: made-up results derived from the runs' identities."
    delay = float(os.environ.get('NNCOMP_STANDIN_DELAY', '0'))
    log = os.environ.get('NNCOMP_STANDIN_LOG')
    if os.environ.get('NNCOMP_STANDIN_BARRIER'): barrier(*os.environ['NNCOMP_STANDIN_BARRIER'].rsplit(':', 1))
    out = []
    for cfg, seed in zip(cfgs, seeds):
        if log:  # one line per training, appended atomically (O_APPEND), so tests can count trainings
            with open(log, 'a') as f: f.write(f'{run_id(cfg)}-s{seed} {os.getpid()}\n')
        time.sleep(delay)
        u = int(hashlib.sha256(f'{run_id(cfg)}-{seed}'.encode()).hexdigest()[:8], 16) / 2**32
        h = cfg.model.hidden[0]
        edges = 784 * h + h * 10
        alive = round(edges * (1 - cfg.method.amount))
        failed = cfg.method.amount >= 0.999
        out.append(dict(test_acc=None if failed else 0.8 + 0.1 * u, valid_acc=None if failed else 0.8 + 0.1 * u,
                        best_epoch=cfg.train.epochs - 1, epochs=cfg.train.epochs, n_edges=edges, n_alive_edges=alive,
                        n_biases=h + 10, n_params=alive + h + 10, removed_fraction=cfg.method.amount, failed=failed,
                        reason='diverged (stand-in)' if failed else None, wall_time=delay,
                        history=[dict(epoch=e, train_loss=1 / (e + 1), valid_acc=0.8, sparsity=0.0) for e in range(cfg.train.epochs)],
                        state={'w': torch.full((2, 2), u)}))
    return out

def train_fails(cfgs:list, seeds:list, data=None, device=None, progress=False) -> list[dict]:
    "Stand-in for a worker that cannot train (no data files, a device its torch lacks): raises, as such a worker does."
    raise FileNotFoundError('mnist file train-images-idx3-ubyte not found (stand-in worker without the data)')

FAILING = STANDIN | {'train': 'standins:train_fails'}
