"""The results store: atomic files, locks across processes, a sweep killed with SIGKILL then resumed, and faults:
malformed run files, edited configs, a full disk, two presets in one folder."""
import argparse, errno, json, os, shutil, signal, subprocess, sys, time, warnings
from pathlib import Path
import pandas as pd
import pytest
import torch
from nncomp.config import RunConfig, MethodConfig, to_dict
from nncomp.core import WriteError
from nncomp.methods import method_of
from nncomp.runs.store import (RunLock, is_locked, run_path, start_run, finish_run, load_runs, save_runs, load_state,
                          provenance, unfinished_runs, load_module, export_safetensors)
from nncomp.runs.sweep import plan_runs, sweep_spec, run_sweep, STUDY
from standins import STANDIN

ROOT = Path(__file__).resolve().parents[1]

def env(**extra):
    "Environment of a child sweep: nncomp importable from this checkout, stand-in trainer settings."
    e = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    e.update({k: str(v) for k, v in extra.items()})
    return e

SWEEP = ("from nncomp.runs.sweep import run_sweep; from standins import STANDIN; "
         "run_sweep('smoke', methods=['magl2', 'magl1', 'obd', 'random', 'hashednet'], seeds=3, results={root!r}, "
         "scheduler='inline', engine=STANDIN, progress=False, max_batch=3)")
N_RUNS = 32  # 5 methods x 2 levels x 3 seeds, + Figure 6's two networks (one seed)

def test_lock_is_exclusive_across_processes_and_dies_with_its_owner(tmp_path):
    holder = subprocess.Popen([sys.executable, '-c', f"from nncomp.runs.store import RunLock; import time; "
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
    assert {method_of(c) for c, s in plan_runs(spec)} == set(STUDY)

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


# ---------------------------------------------------------------- faults

def standin_sweep(root, **kw):
    return run_sweep('smoke', methods=['magl2', 'hashednet'], results=root, scheduler='inline', engine=STANDIN, progress=False, **kw)

BAD_FILES = {'empty metrics': ('metrics.json', ''), 'NaN': ('metrics.json', '{"test_acc": NaN, "failed": false}'),
             '1e400': ('metrics.json', '{"test_acc": 1e400}'), 'wrong type': ('metrics.json', '{"test_acc": "high"}'),
             'a list': ('metrics.json', '[1, 2]'), 'deep': ('metrics.json', '[' * 200_000 + ']' * 200_000),
             'no config': ('config.json', None), 'config not a dict': ('config.json', '"x"')}

@pytest.mark.parametrize('case', BAD_FILES)
def test_malformed_run_file_is_named_set_aside_and_retrained(tmp_path, case):
    df = standin_sweep(tmp_path)
    victim = tmp_path/df.path[0]
    name, text = BAD_FILES[case]
    if text is None: (victim/name).unlink()
    else: (victim/name).write_text(text)
    with pytest.warns(UserWarning, match=str(victim/name)):     # named, not a bare JSONDecodeError / TypeError
        assert victim.name in load_runs(tmp_path).attrs['bad_runs']
    with pytest.warns(UserWarning, match='set aside in'):
        again = standin_sweep(tmp_path)                          # the sweep goes on
    assert again.attrs['trained'] == 1 and len(again) == len(df) and again.test_acc.notna().all()
    (q,) = (tmp_path/'quarantine').iterdir()
    assert q.name.startswith(victim.name) and str(victim/name) in (q/'reason.txt').read_text()
    assert not load_runs(tmp_path).attrs['bad_runs']

def test_edited_config_is_flagged(tmp_path):
    "A run folder's name is its config's hash: a config.json edited afterwards is not silently reported as another level."
    df = standin_sweep(tmp_path)
    victim = tmp_path/df.path[df.level == 0.9].iloc[0]
    d = json.loads((victim/'config.json').read_text()); d['config']['method']['amount'] = 0.5
    (victim/'config.json').write_text(json.dumps(d))
    with pytest.warns(UserWarning, match=f'{victim}/config.json: its config hashes to .* but the folder is {victim.name}'):
        table = load_runs(tmp_path)
    assert 0.5 not in table.level.tolist() and victim.name in table.attrs['bad_runs']

def test_disk_full_names_the_folder_and_leaves_no_temp_files(tmp_path, monkeypatch):
    def full(obj, f, *a, **k):   # what torch's zip writer raises when the disk fills up
        open(f, 'wb').write(b'partial'); raise RuntimeError('[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0')
    monkeypatch.setattr(torch, 'save', full)
    with pytest.raises(WriteError, match=r'cannot write state\.pt in folder .*runs/[0-9a-f]{16}-s0: .*is the disk full'):
        standin_sweep(tmp_path)
    monkeypatch.undo()
    assert not list(tmp_path.rglob('*.tmp-*')), 'temporary files left behind'
    def no_space(self, path, *a, **k): open(path, 'wb').write(b'x'); raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(pd.DataFrame, 'to_parquet', no_space)
    with pytest.raises(WriteError, match=f'cannot write runs.parquet in folder {tmp_path}: No space left on device'):
        standin_sweep(tmp_path)
    assert not list(tmp_path.rglob('*.tmp-*'))

def test_one_preset_per_results_folder(tmp_path, monkeypatch):
    monkeypatch.setenv('NNCOMP_STANDIN_LOG', str(tmp_path/'trained.log'))
    standin_sweep(tmp_path/'res')
    with pytest.raises(ValueError, match=f"preset='quick' is not allowed; allowed: 'smoke' only in results folder {tmp_path/'res'}"):
        run_sweep('quick', methods=['magl2'], results=tmp_path/'res', scheduler='inline', engine=STANDIN, progress=False)
    (tmp_path/'res'/'preset.json').unlink()                    # a folder from before the marker: judged by its runs
    with pytest.raises(ValueError, match="'smoke' only"):
        run_sweep('quick', methods=['magl2'], results=tmp_path/'res', scheduler='inline', engine=STANDIN, progress=False)
    assert len((tmp_path/'trained.log').read_text().splitlines()) == 5   # 2 methods x 2 levels + Figure 6's MagL2; the refused sweeps trained nothing

def test_weights_option_and_export(tmp_path):
    lean = standin_sweep(tmp_path, weights='none')
    kept = {p: (tmp_path/p/'state.pt').exists() for p in lean.path}
    assert sum(kept.values()) == 1 and (lean[lean.path.map(kept)].hidden == 50).all()   # only Figure 6's network (magl2)
    with pytest.raises(FileNotFoundError, match='stored without its weights'): load_state(tmp_path/lean.path[~lean.path.map(kept)].iloc[0])
    with pytest.raises(ValueError, match="weights='some' is not allowed; allowed: all, none"): standin_sweep(tmp_path, weights='some')
