"""Faults of issue 27 (items 5-10): each named (the file or the value), exiting non-zero, losing nothing.
5 a train-only study whose runs all failed; 6 derived runs and run configs that cannot be trusted; 7 a broken Figure-6
`state.pt`; 8 a run of another preset; 9 an empty `--results` and a `--max-batch` that nothing uses; 10 a full disk
while a notebook is written."""
import errno, functools, json, shutil, warnings
from pathlib import Path
import pytest, torch
from nncomp.config import RunConfig, DataConfig, ModelConfig, TrainConfig, MethodConfig, ScheduleConfig, to_dict
from nncomp.core import WriteError
from nncomp import report as rp
from nncomp.runs import study
from nncomp.runs.store import (run_path, run_name, start_run, finish_run, provenance, load_runs, save_runs, read_json,
                               claim_folder, run_problem, DERIVED)
from nncomp.runs.sweep import run_sweep
from nncomp.runs.derived import run_derived
from standins import STANDIN, FAILING

@pytest.fixture(autouse=True)
def no_task_lines(monkeypatch):
    "`nncomp_study --no-progress` sets $NNCOMP_LOG_TASKS unless it is set: set here ('0', no lines), undone after each test."
    monkeypatch.setenv('NNCOMP_LOG_TASKS', '0')

def quiet(f, *a, **k):
    "`f(*a, **k)` and the warnings it gave, as strings."
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); out = f(*a, **k)
    return out, [str(x.message) for x in w]

def toy_config(dataset:str, level:float) -> RunConfig:
    "A tiny MagL2 run's config (784-8-10, one epoch)."
    return RunConfig(DataConfig(dataset), ModelConfig(hidden=(8,)), TrainConfig(epochs=1),
                     MethodConfig('magnitude', level), ScheduleConfig(steps=1, every=1))

def standin_sweep(root, preset='smoke', **kw):
    return run_sweep(preset, methods=['magl2'], results=root, scheduler='inline', engine=STANDIN, progress=False, **kw)

# ---------------------------------------------------------------- 5: every run failed

def test_train_only_exits_non_zero_saying_how_many_failed_and_why(tmp_path, monkeypatch):
    # a worker without the data
    monkeypatch.setattr(study, 'train_study', functools.partial(study.train_study, engine=FAILING))
    with pytest.raises(SystemExit) as e:
        study.main(['--preset', 'smoke', '--train-only', '--scheduler', 'inline', '--sweeps', 'pruning,hashednet',
                    '--results', str(tmp_path), '--no-progress'])
    msg = str(e.value.code)
    assert msg.startswith('nncomp_study: 12 of 12 planned runs failed; the first: ')
    assert 'train-images-idx3-ubyte not found' in msg
    # recorded as failed: retried by the next sweep
    assert len(load_runs(tmp_path)) == 12
    monkeypatch.undo()
    out = study.train_study('smoke', tmp_path, sweeps=('pruning',), engine=STANDIN, progress=False)
    # 'error:' runs train again and succeed
    assert out['pruning'] == dict(planned=10, finished=10, failed=0, reason=None)

# ---------------------------------------------------------------- 6: derived runs and run configs read from disk

@pytest.fixture(scope='module')
def coded(tmp_path_factory):
    "A smoke store with two real MagL2 runs (toy data) and their six derived runs (two coders and sparse fp32 each)."
    from nncomp.engine.train import train_batch, toy_data
    root = tmp_path_factory.mktemp('coded')
    toy = toy_data(n_train=300, n_test=100)
    cfgs = [toy_config('mnist', a) for a in (0.0, 0.9)]
    for cfg, r in zip(cfgs, train_batch(cfgs, [0, 0], toy, progress=False)):
        p = run_path(root, cfg, 0); start_run(p, cfg, 0, 'smoke'); finish_run(p, r, provenance(None, 'smoke'))
    claim_folder(root, 'smoke')
    assert run_derived(root, load=lambda d: toy, progress=False)['derived'] == 6
    return root, (lambda d: toy)

def copy_store(coded, tmp_path):
    root = tmp_path/'store'; shutil.copytree(coded[0], root); return root

def derived_of(root, parent_level=0.9):
    "A derived run folder of the parent with `parent_level`, and the other trained run's name."
    runs = load_runs(root)
    parent = runs[(runs.method == 'magl2') & (runs.level == parent_level)].run.item()
    other = runs[(runs.method == 'magl2') & (runs.level != parent_level)].run.item()
    return next(p for p in (root/DERIVED).iterdir() if p.name.startswith(parent)), other

def test_derived_metrics_not_an_object_is_named_set_aside_and_derived_again(coded, tmp_path):
    root = copy_store(coded, tmp_path)
    victim, _ = derived_of(root)
    (victim/'metrics.json').write_text('[]')
    df, w = quiet(load_runs, root)
    assert victim.name in df.attrs['bad_runs']
    assert any(f"{victim/'metrics.json'}: expected a JSON object, got list" in m for m in w)
    counts, w = quiet(run_derived, root, load=coded[1], progress=False)   # the coding stage goes on, no AttributeError
    assert counts['derived'] == 1 and any('set aside in' in m for m in w)
    (q,) = (root/'quarantine').iterdir()
    assert q.name.startswith(victim.name) and 'expected a JSON object' in (q/'reason.txt').read_text()
    assert not quiet(load_runs, root)[0].attrs['bad_runs'] and len(load_runs(root)) == 8

@pytest.mark.parametrize('where', ['metrics.json', 'derived.json'])
def test_edited_parent_of_a_derived_run_is_refused(coded, tmp_path, where):
    root = copy_store(coded, tmp_path)
    victim, other = derived_of(root)
    d = json.loads((victim/where).read_text()); d['parent'] = other; (victim/where).write_text(json.dumps(d))
    df, w = quiet(save_runs, root)                                         # the sweep's rebuild sets it aside
    assert victim.name in df.attrs['bad_runs'] and any(str(victim/where) in m and 'set aside in' in m for m in w)
    # no row moved to the other level
    assert df[df.method != 'magl2'].groupby('level').size().to_dict() == {0.0: 3, 0.9: 2}
    assert not (victim/'metrics.json').exists() and run_derived(root, load=coded[1], progress=False)['derived'] == 1

def test_forged_run_config_is_refused_even_with_its_hash_recomputed(coded, tmp_path):
    root = copy_store(coded, tmp_path)
    src = next(p for p in (root/'runs').iterdir())
    d = json.loads((src/'config.json').read_text())
    cfg = toy_config('imagenet', 1.5)
    d['config'] = to_dict(cfg); forged = root/'runs'/run_name(cfg, 0)
    shutil.copytree(src, forged); (forged/'config.json').write_text(json.dumps(d))
    df, w = quiet(save_runs, root)
    assert forged.name in df.attrs['bad_runs'] and 'imagenet' not in set(df.dataset)
    assert any(f"{forged/'config.json'}: not a valid run config" in m and 'set aside in' in m for m in w)
    assert "method.amount=1.5 is not allowed" in (next((root/'quarantine').iterdir())/'reason.txt').read_text()
    cfg = toy_config('imagenet', 0.5)
    d['config'] = to_dict(cfg); forged = root/'runs'/run_name(cfg, 0)
    shutil.copytree(src, forged); (forged/'config.json').write_text(json.dumps(d))
    assert "data.name='imagenet' is not allowed" in run_problem(forged)

# ---------------------------------------------------------------- 7: Figure 6's weights

@pytest.mark.parametrize('damage', ['truncated', 'planted', 'other weights'])
def test_broken_figure6_weights_are_named_and_the_run_is_trained_again(tmp_path, monkeypatch, damage):
    standin_sweep(tmp_path)
    runs = rp.load_results(tmp_path)
    (fig6,) = rp.histogram_runs(runs).path
    f = Path(fig6)/'state.pt'
    if damage == 'truncated': f.write_bytes(f.read_bytes()[:40])
    elif damage == 'planted': f.write_bytes(b'PK\x03\x04 not a torch file')
    else: torch.save({'w': torch.zeros(2, 2)}, f)                          # loads fine: only its checksum tells
    weights, w = quiet(rp.histogram_weights, runs)                         # the report goes on, naming the file
    assert weights == {} and any(str(f) in m for m in w)
    note = rp.figure6_note(runs, weights)
    assert str(f) in note and 'trains it again' in note
    monkeypatch.setenv('NNCOMP_STANDIN_LOG', str(tmp_path/'trained.log'))
    again, w = quiet(standin_sweep, tmp_path)
    assert again.attrs['trained'] == 1 and any(str(f) in m and 'set aside in' in m for m in w)
    assert Path(fig6).name in (tmp_path/'trained.log').read_text()
    assert list(rp.histogram_weights(rp.load_results(tmp_path))) == ['MagL2'] and (tmp_path/'quarantine').is_dir()

# ---------------------------------------------------------------- 8: a run of another preset

def test_run_copied_from_another_preset_is_refused_and_ids_are_unchanged(tmp_path):
    quick = run_sweep('quick', methods=['magl2'], datasets=['mnist'], hidden=[30], levels=[0.9], seeds=1,
                      results=tmp_path/'quick', scheduler='inline', engine=STANDIN, progress=False)
    smoke = standin_sweep(tmp_path/'smoke')
    stray = tmp_path/'quick'/quick.path[0]
    # id: the config's hash only
    assert read_json(stray/'config.json')['preset'] == 'quick' and stray.name == run_name(*load_cfg(stray))
    shutil.copytree(stray, tmp_path/'smoke'/'runs'/stray.name)
    # a run from before config.json recorded it
    cfg, _ = load_cfg(stray); d = read_json(stray/'config.json'); del d['preset']; d['seed'] = 9
    legacy = tmp_path/'smoke'/'runs'/run_name(cfg, 9)
    shutil.copytree(stray, legacy); (legacy/'config.json').write_text(json.dumps(d))
    df, w = quiet(save_runs, tmp_path/'smoke')
    assert set(df.attrs['bad_runs']) == {stray.name, legacy.name}
    assert len(df) == len(smoke) and set(df.preset) == {'smoke'}
    said = "a run of preset 'quick' in a results folder of preset 'smoke'"
    assert sum(said in m and 'set aside in' in m for m in w) == 2
    refused = f"preset='quick' is not allowed; allowed: 'smoke' only in results folder {tmp_path/'smoke'}"
    with pytest.raises(ValueError, match=refused):
        rp.report_folder(tmp_path/'smoke', 'quick')                        # papermill -p preset quick on a smoke folder
    assert rp.report_folder(tmp_path/'smoke') == ('smoke', tmp_path/'smoke')

def load_cfg(path):
    from nncomp.runs.store import load_config
    return load_config(path)

def test_a_store_that_reuses_another_presets_runs_says_so(tmp_path):
    standin_sweep(tmp_path/'smoke')
    (tmp_path/'smoke'/'preset.json').write_text('{"preset": "smoke-sensitivity", "reuses": ["smoke"]}')
    # e.g. results/sensitivity, which copied paper runs
    assert not quiet(load_runs, tmp_path/'smoke')[0].attrs['bad_runs']

# ---------------------------------------------------------------- 9: arguments nothing would use well

@pytest.mark.parametrize('train_only', [False, True])
def test_empty_results_folder_is_refused(tmp_path, monkeypatch, train_only):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match="nncomp_study: results='' is not allowed; allowed: the path of a results"):
        study.main(['--preset', 'smoke', '--results', '', '--no-progress'] + ['--train-only'] * train_only)
    with pytest.raises(ValueError, match="results='' is not allowed"): standin_sweep('')
    assert not list(tmp_path.iterdir())                                    # no runs/ in the current folder

@pytest.mark.parametrize('args, message', [
    (['--max-batch', '0'], 'max_batch=0 is not allowed; allowed: a positive integer'),
    (['--max-batch', '-3', '--train-only'], 'max_batch=-3 is not allowed'),
    (['--max-batch', '4'], 'max_batch=4 is not allowed; allowed: a value only with --train-only')])
def test_max_batch_is_checked_and_never_ignored(tmp_path, args, message):
    with pytest.raises(SystemExit, match=message):
        study.main(['--preset', 'smoke', '--results', str(tmp_path/'res'), '--no-progress'] + args)
    assert not (tmp_path/'res'/'runs').exists()

# ---------------------------------------------------------------- 10: a full disk while a notebook is written

def fake_papermill(monkeypatch, fail:str):
    "papermill.execute_notebook writing a valid notebook, except for notebooks named `fail`: half a file, then ENOSPC."
    import papermill, nbformat
    def execute(nb, out, **kw):
        if fail and Path(out).name.startswith(f'.{fail}.'):
            Path(out).write_text('{"cells": [')
            raise OSError(errno.ENOSPC, 'No space left on device')
        nbformat.write(nb, out)
    monkeypatch.setattr(papermill, 'execute_notebook', execute)

def test_full_disk_while_writing_a_notebook_names_the_folder_and_keeps_the_old_copy(tmp_path, monkeypatch):
    src = Path(study.study_folder())/'report.ipynb'
    dst = tmp_path/'report.ipynb'; dst.write_text(src.read_text())       # the previous report
    fake_papermill(monkeypatch, 'report')
    with pytest.raises(WriteError, match=f'cannot write report.ipynb in folder {tmp_path}: No space left on device'):
        study.run_notebook(src, dst, dict(results=str(tmp_path)))
    assert dst.read_text() == src.read_text() and not list(tmp_path.glob('.*tmp-*'))
    # the console script: one line naming the folder
    with pytest.raises(SystemExit) as e:
        study.main(['--preset', 'smoke', '--sweeps', 'coding', '--results', str(tmp_path/'res'), '--no-progress'])
    msg = str(e.value.code)
    assert msg.startswith(f"nncomp_study: cannot write report.ipynb in folder {tmp_path/'res'}: No space left on")
    assert '\n' not in msg
    json.loads((tmp_path/'res'/'coding.ipynb').read_text())               # the notebooks before it: written whole

def test_a_failing_cell_keeps_the_executed_copy(tmp_path, monkeypatch):
    import papermill, nbformat
    from papermill.exceptions import PapermillExecutionError
    def execute(nb, out, **kw):
        nbformat.write(nb, out); raise PapermillExecutionError(0, 1, 'boom', 'ValueError', 'bad', [])
    monkeypatch.setattr(papermill, 'execute_notebook', execute)
    with pytest.raises(PapermillExecutionError):
        study.run_notebook(Path(study.study_folder())/'coding.ipynb', tmp_path/'c.ipynb', {})
    assert nbformat.read(tmp_path/'c.ipynb', as_version=4).cells and not list(tmp_path.glob('.*tmp-*'))
