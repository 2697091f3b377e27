"""The results store: atomic files, locks across processes, and a sweep killed with SIGKILL then resumed."""
import argparse, json, os, signal, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
import torch
from nncomp.config import RunConfig, MethodConfig
from nncomp.store import (RunLock, is_locked, run_path, start_run, finish_run, load_runs, save_runs, load_state,
                          provenance, unfinished_runs, study_method)
from nncomp.sweep import STANDIN, plan_runs, sweep_spec, run_sweep, METHODS

ROOT = Path(__file__).resolve().parents[1]

def env(**extra):
    "Environment of a child sweep: nncomp importable from this checkout, stand-in trainer settings."
    e = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    e.update({k: str(v) for k, v in extra.items()})
    return e

SWEEP = ("from nncomp.sweep import run_sweep, STANDIN; "
         "run_sweep('smoke', methods=['magl2', 'magl1', 'obd', 'random', 'hashednet'], seeds=3, results={root!r}, "
         "scheduler='inline', engine=STANDIN, progress=False, max_batch=3)")
N_RUNS = 30  # 5 methods x 2 levels x 3 seeds

def test_lock_is_exclusive_across_processes_and_dies_with_its_owner(tmp_path):
    holder = subprocess.Popen([sys.executable, '-c', f"from nncomp.store import RunLock; import time; "
                               f"l = RunLock({str(tmp_path)!r}); assert l.acquire(); print('held', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True, env=env())
    try:
        assert holder.stdout.readline().strip() == 'held'
        assert not RunLock(tmp_path).acquire() and is_locked(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL); holder.wait()
    lock = RunLock(tmp_path)
    assert lock.acquire()   # the kernel dropped the dead owner's lock: no stale-lock cleanup needed
    lock.release()

def test_failed_runs_are_rows_with_their_reason(tmp_path):
    cfg = RunConfig(method=MethodConfig('magnitude', 0.9))
    path = run_path(tmp_path, cfg, 0); start_run(path, cfg, 0)
    finish_run(path, dict(failed=True, reason='non-finite training loss (nan) in epoch 3', test_acc=None, history=[]),
               provenance('cpu', 'smoke'))
    df = load_runs(tmp_path)
    assert df.failed.tolist() == [True] and df.reason[0].startswith('non-finite') and pd.isna(df.test_acc[0])
    assert df.method[0] == 'magl2' and df.level[0] == 0.9

def test_state_holds_tensors_only(tmp_path):
    cfg = RunConfig(); path = run_path(tmp_path, cfg, 1); start_run(path, cfg, 1)
    finish_run(path, dict(failed=False, test_acc=0.5, history=[], state={'w': torch.arange(3.)}), provenance())
    assert torch.equal(load_state(path)['w'], torch.arange(3.))
    torch.save({'w': torch.zeros(1), 'x': argparse.Namespace(a=1)}, path/'state.pt')   # not tensors: refused, not unpickled
    with pytest.raises(Exception): load_state(path)

def test_every_method_reads_back_from_its_config(tmp_path):
    spec = sweep_spec('smoke', results=tmp_path)
    assert {study_method(c) for c, s in plan_runs(spec)} == set(METHODS)

def test_sigkill_midway_then_rerun(tmp_path):
    log = tmp_path/'trained.log'
    child = subprocess.Popen([sys.executable, '-c', SWEEP.format(root=str(tmp_path))],
                             env=env(NNCOMP_STANDIN_DELAY=0.15, NNCOMP_STANDIN_LOG=log))
    deadline = time.time() + 60
    def midway(): return len(list(tmp_path.glob('runs/*/metrics.json'))) >= 9 and unfinished_runs(tmp_path)
    while not midway() and time.time() < deadline: time.sleep(0.02)
    child.send_signal(signal.SIGKILL); child.wait()
    done_before = {p.parent.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.glob('runs/*/metrics.json')}
    assert 9 <= len(done_before) < N_RUNS, len(done_before)
    assert unfinished_runs(tmp_path), 'the kill should leave a started, unfinished run'
    partial = load_runs(tmp_path)           # the store is readable mid-way: only finished runs, all complete
    assert len(partial) == len(done_before) and partial.test_acc.notna().all()
    trained_before = log.read_text().split()[::2]

    os.environ['NNCOMP_STANDIN_LOG'] = str(tmp_path/'rerun.log')
    try: df = run_sweep('smoke', methods=['magl2', 'magl1', 'obd', 'random', 'hashednet'], seeds=3, results=tmp_path,
                        scheduler='inline', engine=STANDIN, progress=False, max_batch=3)
    finally: del os.environ['NNCOMP_STANDIN_LOG']
    retrained = set((tmp_path/'rerun.log').read_text().split()[::2])
    assert not retrained & set(done_before), 'a finished run was recomputed'
    assert len(retrained) == N_RUNS - len(done_before)
    for name, (data, mtime) in done_before.items():   # finished runs untouched
        p = tmp_path/'runs'/name/'metrics.json'
        assert p.read_bytes() == data and p.stat().st_mtime_ns == mtime
    assert len(df) == N_RUNS and df.run.is_unique and not unfinished_runs(tmp_path)
    assert not list(tmp_path.glob('runs/*/*.tmp-*')), 'temporary files left behind'
    for p in tmp_path.glob('runs/*/*.json'): json.loads(p.read_text())
    assert pd.read_parquet(tmp_path/'runs.parquet').shape[0] == N_RUNS
