"""Sweeps: bad input, Dask on loopback equals in-process, two sweeps at once, vanished workers, exit status, and the
real engine end to end."""
import ast, os, re, socket, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
import torch
from pkgutil import resolve_name
from nncomp.config import LEVELS_H100, LEVELS_H30
from nncomp.runs.sweep import PRESETS, plan_runs, run_sweep, sweep_spec, make_tasks, ENGINE
from standins import STANDIN
from nncomp.runs.store import load_runs, load_state

ROOT = Path(__file__).resolve().parents[1]
FIELDS = ['run', 'dataset', 'method', 'hidden', 'level', 'seed', 'test_acc', 'valid_acc', 'n_params', 'failed', 'reason']

def env(**extra):
    e = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]))
    e.update({k: str(v) for k, v in extra.items()})
    return e

@pytest.mark.parametrize('kw, message', [
    (dict(preset='fast'), "preset='fast'"), (dict(datasets=['mnist', 'cifar10']), "dataset='cifar10'"),
    (dict(methods=['magl2', 'prune']), "method='prune'"), (dict(levels=[0.5, 1.0]), 'level=1.0'),
    (dict(levels=[-0.01]), 'level=-0.01'), (dict(seeds=0), 'seeds=0'), (dict(seeds=-2), 'seeds=-2'),
    (dict(epochs=0), 'epochs=0'), (dict(epochs=2.5), 'epochs=2.5'), (dict(device='gpu7'), "device='gpu7'"),
    (dict(levels=','), "levels=','"), (dict(levels='[0.5'), "levels='[0.5'"), (dict(weights='most'), "weights='most'"),
    *([(dict(device='cuda'), "device='cuda' is not allowed; allowed: a torch device this machine has")] if not torch.cuda.is_available() else []),
    (dict(scheduler='tcp://127.0.0.1:9'), "scheduler='tcp://127.0.0.1:9' is not allowed")])
def test_bad_input_fails_before_anything_runs(tmp_path, monkeypatch, kw, message):
    monkeypatch.setenv('NNCOMP_STANDIN_LOG', str(tmp_path/'trained.log'))
    with pytest.raises(ValueError, match=re.escape(message)):
        run_sweep(**{'preset': 'smoke', 'scheduler': 'inline', **kw}, results=tmp_path/'res', engine=STANDIN, progress=False)
    assert not (tmp_path/'trained.log').exists() and not (tmp_path/'res'/'runs').exists()

def test_unwritable_results_folder(tmp_path):
    (tmp_path/'file').write_text('x')   # a folder below a file cannot be created, even by root
    with pytest.raises(ValueError, match="results='.*' is not allowed; allowed: a folder this user can write"):
        run_sweep('smoke', results=tmp_path/'file'/'res', scheduler='inline', engine=STANDIN)

def test_presets_plan_valid_configs(tmp_path):
    quick = plan_runs(sweep_spec('quick', results=tmp_path))
    assert {c.data.name for c, s in quick} == set(PRESETS['quick'].datasets)
    paper = plan_runs(sweep_spec('paper', methods=['magl2', 'magl1', 'obd', 'hashednet'], results=tmp_path))
    assert len(paper) == 5 * (3 * (len(LEVELS_H100) + len(LEVELS_H30)) + 10) * 5 + 2   # datasets x (3 pruning x (H100 + H30 levels) + HashedNet) x seeds, + Figure 6
    tasks = make_tasks(paper, resolve_name(ENGINE['key']), PRESETS['paper'].max_batch)
    assert sum(len(t.runs) for t in tasks) == len(paper) and max(len(t.runs) for t in tasks) <= 64
    for t in tasks: assert [s for _, s in t.runs] == sorted(s for _, s in t.runs)   # runs sharing a seed sit together

def test_local_cluster_on_loopback_equals_in_process(tmp_path):
    from distributed import LocalCluster
    kw = dict(preset='smoke', methods=['magl2', 'obd', 'hashednet'], seeds=2, engine=STANDIN, progress=False)
    inline = run_sweep(**kw, results=tmp_path/'inline', scheduler='inline')
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host='127.0.0.1', dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith('tcp://127.0.0.1:')
        remote = run_sweep(**kw, results=tmp_path/'cluster', scheduler=cluster.scheduler_address)
    assert remote.attrs['trained'] == len(inline) == 13      # 3 methods x 2 levels x 2 seeds + Figure 6's MagL2 network
    pd.testing.assert_frame_equal(remote[FIELDS], inline[FIELDS])

def test_two_sweeps_at_once_never_train_a_run_twice(tmp_path):
    code = ("from nncomp.runs.sweep import run_sweep; from standins import STANDIN; "
            f"df = run_sweep('smoke', methods=['magl2', 'magl1', 'obd', 'random', 'hashednet'], seeds=4, results={str(tmp_path)!r}, "
            "scheduler='inline', engine=STANDIN, progress=False, max_batch=2); print(len(df), df.attrs['trained'], df.attrs['waited'])")
    e = env(NNCOMP_STANDIN_DELAY=0.07, NNCOMP_STANDIN_LOG=tmp_path/'trained.log',
            NNCOMP_STANDIN_BARRIER=f"{tmp_path/'barrier'}:2")   # both sweeps are mid-way at the same time
    procs = [subprocess.Popen([sys.executable, '-c', code], env=e, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    lines = (tmp_path/'trained.log').read_text().splitlines()
    names = [l.split()[0] for l in lines]
    assert len(names) == len(set(names)) == 42, 'a run was trained twice (or not at all)'
    assert [int(o[0]) for o in outs] == [42, 42]               # both sweeps end with the complete table
    assert sum(int(o[1]) for o in outs) == 42                    # the work was split, not duplicated
    assert len({l.split()[1] for l in lines}) == 2, 'both processes should have trained some runs'
    assert len(load_runs(tmp_path)) == 42

def test_not_waiting_leaves_held_runs_to_their_owner(tmp_path):
    "With wait=False a sweep trains what it can and returns; runs another process holds stay theirs (counted as held)."
    from nncomp.runs.store import RunLock, run_path, is_done
    kw = dict(methods=['magl2'], results=tmp_path, scheduler='inline', engine=STANDIN, progress=False)
    cfg, seed = plan_runs(sweep_spec('smoke', **{k: kw[k] for k in ('methods', 'results')}))[0]
    lock = RunLock(run_path(tmp_path, cfg, seed)); assert lock.acquire()    # another sweep's run, as far as run_sweep can tell
    try:
        df = run_sweep('smoke', wait=False, **kw)
        assert (df.attrs['held'], df.attrs['trained'], len(df)) == (1, 2, 2)   # 2 levels + Figure 6's MagL2 network, one held
        assert not is_done(run_path(tmp_path, cfg, seed))
    finally: lock.release()
    assert run_sweep('smoke', **kw).attrs['trained'] == 1                       # let go: the next sweep trains it

def test_without_bars_each_task_logs_a_line(tmp_path, capsys, monkeypatch):
    "progress=False with NNCOMP_LOG_TASKS=1 (nncomp_study --no-progress: a log file) prints one line per finished task."
    kw = dict(methods=['magl2'], scheduler='inline', engine=STANDIN, progress=False, desc='[smoke] test')
    run_sweep('smoke', results=tmp_path/'quiet', **kw)
    assert '[smoke] test' not in capsys.readouterr().err                          # notebooks and tests stay quiet
    monkeypatch.setenv('NNCOMP_LOG_TASKS', '1')
    run_sweep('smoke', results=tmp_path, **kw)
    lines = [l for l in capsys.readouterr().err.splitlines() if '[smoke] test' in l]   # stderr, where the bars go
    assert lines and lines[-1].endswith('3/3 done') and 'runs stored (0 failed)' in lines[-1]

@pytest.mark.skipif(not os.environ.get('NNCOMP_DATA'), reason='needs the real MNIST files: set NNCOMP_DATA (CI sets it)')
def test_real_engine_end_to_end(tmp_path):
    df = run_sweep('smoke', methods=['magl1', 'obd', 'hashednet', 'convnet'], results=tmp_path, scheduler='local', progress=False)
    assert df.attrs['trained'] == len(df) == 8 and not df.failed.any()   # + Figure 6's MagL1 network
    assert df.test_acc.between(0.1, 1).all() and set(df.method) == {'magl1', 'obd', 'hashednet', 'convnet'}
    pruned = df[(df.method == 'obd') & (df.level == 0.9)].iloc[0]
    assert abs(pruned.n_params - (round(0.1 * (784 * 30 + 30 * 10)) + 40)) <= 2   # 10 % of the edges + the biases
    assert pruned.commit and pruned.device == 'cpu' and pruned.preset == 'smoke'
    run = tmp_path/pruned.path
    assert len((run/'log.jsonl').read_text().splitlines()) == pruned.epochs and load_state(run)
    again = run_sweep('smoke', methods=['magl1', 'obd', 'hashednet', 'convnet'], results=tmp_path, scheduler='inline', progress=False)
    assert again.attrs['trained'] == 0


def test_study_notebooks_have_a_parameters_cell():
    "papermill injects parameters after the cell tagged `parameters`: every study notebook has one, its first code cell."
    import json
    for nb in sorted((Path(__file__).parents[1] / 'nbs' / 'study').glob('*.ipynb')):
        code = [c for c in json.loads(nb.read_text())['cells'] if c['cell_type'] == 'code']
        assert 'parameters' in code[0]['metadata'].get('tags', []), f'{nb.name}: first code cell is not tagged parameters'


def test_levels_typed_as_text_mean_what_they_say(tmp_path):
    "papermill -r levels '0.5' (a string) is level 0.5, not '0'."
    for typed in ('0.5', '0.5,0.9', '[0.5, 0.9]', 0.5):
        df = run_sweep('smoke', methods=['magl2'], levels=typed, results=tmp_path, scheduler='inline', engine=STANDIN, progress=False)
        assert df.level.tolist() == [0.5] + ([0.9] if typed != '0.5' and typed != 0.5 else [])

def test_all_workers_gone_is_an_error_not_a_hang(tmp_path):
    from distributed import LocalCluster
    with LocalCluster(n_workers=0, host='127.0.0.1', dashboard_address=None) as cluster:   # a scheduler with no worker left
        start = time.time()
        with pytest.raises(RuntimeError, match='all workers are gone'):
            run_sweep('smoke', methods=['magl2'], results=tmp_path, scheduler=cluster.scheduler_address, engine=STANDIN,
                      progress=False, worker_timeout=2)
        assert time.time() - start < 30
    assert not list((tmp_path/'runs').glob('*/metrics.json'))   # nothing recorded as done: the next sweep trains them

def test_study_exit_status(monkeypatch, tmp_path):
    "nncomp_study exits non-zero when a run failed, and on bad input (an empty --sweeps, a device this torch lacks)."
    import nncomp.runs.study as study
    def fake(*a, **k): return dict(pruning=1.0, total=1.0, runs=8, failed=1)
    monkeypatch.setattr(study, 'run_study', fake)
    with pytest.raises(SystemExit, match='1 of 8 runs failed') as e: study.main(['--preset', 'smoke'])
    monkeypatch.setattr(study, 'run_study', lambda *a, **k: dict(total=1.0, runs=8, failed=0))
    study.main(['--preset', 'smoke'])                                   # all runs fine: exit status 0
    monkeypatch.undo()
    with pytest.raises(SystemExit, match=r'sweeps=\(\) is not allowed'): study.main(['--preset', 'smoke', '--sweeps', ','])
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="device='cuda' is not allowed"):
            study.main(['--preset', 'smoke', '--device', 'cuda', '--results', str(tmp_path)])
    with pytest.raises(SystemExit, match="scheduler='tcp://127.0.0.1:9' is not allowed"):
        study.main(['--preset', 'smoke', '--scheduler', 'tcp://127.0.0.1:9', '--results', str(tmp_path)])

def test_study_progress_counts_finished_runs(tmp_path, capsys):
    from nncomp.runs.study import Progress, sweep_runs
    paths = sweep_runs('pruning', 'smoke', tmp_path)
    assert len(paths) == 4 * 2 + 2                                      # 4 pruning methods x 2 levels + Figure 6
    with Progress(paths, '[smoke] pruning', every=0.05) as p:
        for q in paths[:3]: q.mkdir(parents=True); (q/'metrics.json').write_text('{}')
        time.sleep(0.3)
    err = capsys.readouterr().err
    assert p.bar.n == 3 and '[smoke] pruning' in err and '3/10' in err

def test_papermill_parameters_as_typed(tmp_path):
    "A sweep notebook through papermill's CLI: -p with a float, -r with a list literal, and an unknown name refused."
    nb = Path(__file__).parents[1]/'nbs'/'study'/'hashednet.ipynb'
    import papermill
    from nncomp.runs.sweep import notebook_parameters
    params = {p['name'] for p in papermill.inspect_notebook(str(nb)).values()}
    assert {'levels', 'results', 'preset', 'weights'} <= params
    ns = {'preset': 'smoke', 'levels': '[0.0, 0.9]'}
    assert notebook_parameters(ns, 'hashednet') == ns
    with pytest.raises(ValueError, match="parameter='level' is not allowed"): notebook_parameters({**ns, 'level': 0.9}, 'hashednet')


def test_train_only_workers_share_a_study(tmp_path):
    "Two `train_study` processes on one store: every planned run trained exactly once, and neither waits for the other."
    code = ("from nncomp.runs.study import train_study; from standins import STANDIN; "
            f"print(train_study('smoke', {str(tmp_path)!r}, sweeps=('pruning', 'hashednet'), engine=STANDIN, max_batch=2, progress=False))")
    e = env(NNCOMP_STANDIN_DELAY=0.05, NNCOMP_STANDIN_LOG=tmp_path/'trained.log', NNCOMP_STANDIN_BARRIER=f"{tmp_path/'barrier'}:2")
    procs = [subprocess.Popen([sys.executable, '-c', code], env=e, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    from nncomp.runs.study import sweep_runs
    planned = {s: len(sweep_runs(s, 'smoke', tmp_path)) for s in ('pruning', 'hashednet')}
    assert planned == {'pruning': 4 * 2 + 2, 'hashednet': 2}     # 4 methods x 2 levels + Figure 6's pair; 2 levels
    lines = (tmp_path/'trained.log').read_text().splitlines()
    names = [l.split()[0] for l in lines]
    assert len(names) == len(set(names)) == 12, 'a run was trained twice (or not at all)'
    assert len({l.split()[1] for l in lines}) == 2, 'both processes should have trained some runs'
    counts = [ast.literal_eval(o.strip().splitlines()[-1]) for o in outs]
    assert {k: max(c[k]['finished'] for c in counts) for k in planned} == planned   # the last to finish saw every run done
    assert len(load_runs(tmp_path)) == 12


@pytest.mark.skipif(not os.environ.get('NNCOMP_DATA'), reason='needs the real MNIST files: set NNCOMP_DATA (CI sets it)')
def test_train_only_codes_and_measures(tmp_path):
    "The coding sweep of `train_study` derives the coded runs and measures every trained run's file, as the coding notebook does."
    from nncomp.runs.study import train_study
    out = train_study('smoke', tmp_path, sweeps=('pruning', 'coding'), progress=False)
    assert out['pruning']['finished'] == out['pruning']['planned'] == 10
    assert out['coding']['finished'] == out['coding']['planned'] > 0
    runs = load_runs(tmp_path)
    assert set(runs.size_from) == {'file'} and runs.stored_bytes.gt(0).all()
