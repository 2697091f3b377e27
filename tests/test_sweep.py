"""Sweeps: bad input, Dask on loopback equals in-process, two sweeps at once, and the real engine end to end."""
import os, subprocess, sys, time
from pathlib import Path
import pandas as pd
import pytest
from nncomp.sweep import STANDIN, PRESETS, plan_runs, run_sweep, sweep_spec, make_tasks, resolve, ENGINE
from nncomp.store import load_runs, load_state

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
    (dict(epochs=0), 'epochs=0'), (dict(epochs=2.5), 'epochs=2.5'), (dict(device='gpu7'), "device='gpu7'")])
def test_bad_input_fails_before_anything_runs(tmp_path, monkeypatch, kw, message):
    monkeypatch.setenv('NNCOMP_STANDIN_LOG', str(tmp_path/'trained.log'))
    with pytest.raises(ValueError, match=message.replace('(', r'\(')):
        run_sweep(**{'preset': 'smoke', **kw}, results=tmp_path/'res', scheduler='inline', engine=STANDIN, progress=False)
    assert not (tmp_path/'trained.log').exists() and not (tmp_path/'res'/'runs').exists()

def test_unwritable_results_folder(tmp_path):
    (tmp_path/'file').write_text('x')   # a folder below a file cannot be created, even by root
    with pytest.raises(ValueError, match='not a writable folder'):
        run_sweep('smoke', results=tmp_path/'file'/'res', scheduler='inline', engine=STANDIN)

def test_presets_plan_valid_configs(tmp_path):
    quick = plan_runs(sweep_spec('quick', results=tmp_path))
    assert {c.data.name for c, s in quick} == set(PRESETS['quick'].datasets)
    paper = plan_runs(sweep_spec('paper', methods=['magl2', 'magl1', 'obd', 'hashednet'], results=tmp_path))
    assert len(paper) == 5 * (3 * (14 + 10) + 10) * 5    # datasets x (3 pruning x (H100 + H30 levels) + HashedNet) x seeds
    tasks = make_tasks(paper, resolve(ENGINE['key']), PRESETS['paper'].max_batch)
    assert sum(len(t.runs) for t in tasks) == len(paper) and max(len(t.runs) for t in tasks) <= 64

def test_local_cluster_on_loopback_equals_in_process(tmp_path):
    from distributed import LocalCluster
    kw = dict(preset='smoke', methods=['magl2', 'obd', 'hashednet'], seeds=2, engine=STANDIN, progress=False)
    inline = run_sweep(**kw, results=tmp_path/'inline', scheduler='inline')
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host='127.0.0.1', dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith('tcp://127.0.0.1:')
        remote = run_sweep(**kw, results=tmp_path/'cluster', scheduler=cluster.scheduler_address)
    assert remote.attrs['trained'] == len(inline) == 12
    pd.testing.assert_frame_equal(remote[FIELDS], inline[FIELDS])

def test_two_sweeps_at_once_never_train_a_run_twice(tmp_path):
    code = ("from nncomp.sweep import run_sweep, STANDIN; "
            f"df = run_sweep('smoke', methods=['magl2', 'magl1', 'obd', 'random', 'hashednet'], seeds=4, results={str(tmp_path)!r}, "
            "scheduler='inline', engine=STANDIN, progress=False, max_batch=2); print(len(df), df.attrs['trained'], df.attrs['waited'])")
    e = env(NNCOMP_STANDIN_DELAY=0.07, NNCOMP_STANDIN_LOG=tmp_path/'trained.log',
            NNCOMP_STANDIN_BARRIER=f"{tmp_path/'barrier'}:2")   # both sweeps are mid-way at the same time
    procs = [subprocess.Popen([sys.executable, '-c', code], env=e, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    lines = (tmp_path/'trained.log').read_text().splitlines()
    names = [l.split()[0] for l in lines]
    assert len(names) == len(set(names)) == 40, 'a run was trained twice (or not at all)'
    assert [int(o[0]) for o in outs] == [40, 40]               # both sweeps end with the complete table
    assert sum(int(o[1]) for o in outs) == 40                    # the work was split, not duplicated
    assert len({l.split()[1] for l in lines}) == 2, 'both processes should have trained some runs'
    assert len(load_runs(tmp_path)) == 40

@pytest.mark.skipif(not os.environ.get('NNCOMP_DATA'), reason='needs the real MNIST files: set NNCOMP_DATA (CI sets it)')
def test_real_engine_end_to_end(tmp_path):
    df = run_sweep('smoke', methods=['magl1', 'obd', 'hashednet', 'convnet'], results=tmp_path, scheduler='local', progress=False)
    assert df.attrs['trained'] == len(df) == 7 and not df.failed.any()
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
