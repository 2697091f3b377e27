"""The sensitivity runner (21_calibrate) with the stand-in engine: bad input before training, runs copied from another
store, resuming, two processes sharing the work, and the console script."""
import os, re, subprocess, sys
from pathlib import Path
import pandas as pd
import pytest
from nncomp.runs import calibrate
from nncomp.runs.calibrate import run_sensitivity, sensitivity_design, sensitivity_report, store_label
from nncomp.runs.store import claim_folder, load_runs
from standins import STANDIN

ROOT = Path(__file__).resolve().parents[1]
SMOKE = dict(preset='smoke', seeds=1, engine=STANDIN, progress=False)   # the smoke preset: scope erk, c = 1 -> 10 settings

def trained(log:Path) -> list[str]:
    "Run names the stand-in trained, in order."
    return [l.split()[0] for l in log.read_text().splitlines()] if log.exists() else []

def n_runs(levels, seeds=1) -> int:
    return len(set(sensitivity_design(levels, seeds, preset='smoke').run))

def test_plan_size_on_smoke():
    assert n_runs((0.9,)) == 4 + 3 * 2 + 3 * 2 + 2 + 1   # preset (with HashedNet); scope first, global; c = 2, 4; L1 × 0.5, × 2 (MagL1); HashedNet last

@pytest.mark.parametrize('kw, message', [
    (dict(levels=[0.9, 1.0]), 'level=1.0'), (dict(seeds=0), 'seeds=0'), (dict(device='gpu7'), "device='gpu7'"),
    (dict(max_batch=0), 'max_batch=0'), (dict(sources=['nowhere']), "source='nowhere'"), (dict(preset='fast'), "preset='fast'")])
def test_bad_input_fails_before_anything_runs(tmp_path, monkeypatch, kw, message):
    monkeypatch.setenv('NNCOMP_STANDIN_LOG', str(tmp_path/'trained.log'))
    with pytest.raises(ValueError, match=re.escape(message)):
        run_sensitivity(tmp_path/'sens', **{**SMOKE, 'levels': (0.9,), 'sources': (), **kw})
    assert not (tmp_path/'trained.log').exists() and not (tmp_path/'sens'/'runs').exists()

def test_a_folder_of_another_preset_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv('NNCOMP_STANDIN_LOG', str(tmp_path/'trained.log'))
    claim_folder(tmp_path, 'paper')
    with pytest.raises(ValueError, match="preset='sensitivity-smoke' is not allowed"):
        run_sensitivity(tmp_path, levels=(0.9,), sources=(), **SMOKE)
    assert not (tmp_path/'trained.log').exists()

def test_copies_finished_runs_trains_the_rest_and_resumes(tmp_path, monkeypatch):
    log = tmp_path/'trained.log'
    monkeypatch.setenv('NNCOMP_STANDIN_LOG', str(log))
    run_sensitivity(tmp_path/'src', levels=(0.9,), sources=(), **SMOKE)          # another store holding the 0.9 runs
    assert len(trained(log)) == n_runs((0.9,)); log.unlink()
    t = run_sensitivity(tmp_path/'sens', levels=(0.9, 0.98), sources=[tmp_path/'src'], **SMOKE)
    d = sensitivity_design((0.9, 0.98), 1, preset='smoke')
    assert sorted(trained(log)) == sorted(set(d[d.level == 0.98].run))           # the 0.9 runs were copied, not trained
    moved = set(d[d.moved & (d.level == 0.98)].run)
    assert set(trained(log)[:len(moved)]) == moved                               # the moved choices first, the preset's cells last
    runs = load_runs(tmp_path/'sens')
    assert set(runs.run) == set(d.run) and not runs.failed.any()
    src = load_runs(tmp_path/'src').set_index('run')
    copied = runs.set_index('run').loc[src.index]
    pd.testing.assert_series_equal(copied.test_acc, src.test_acc)                # same run, same result
    assert (copied.preset == 'sensitivity-smoke').all()                          # provenance travels with the run
    assert all((tmp_path/'sens'/'runs'/r/f).exists() for r in src.index for f in ('config.json', 'log.jsonl', 'state.pt', 'metrics.json'))
    log.unlink()
    again = run_sensitivity(tmp_path/'sens', levels=(0.9, 0.98), sources=[tmp_path/'src'], **SMOKE)
    assert not log.exists()                                                      # resumed: nothing trained twice
    pd.testing.assert_frame_equal(again, t)
    saved = pd.read_csv(tmp_path/'sens'/calibrate.SENSITIVITY_FILE)                   # the table is saved beside its runs
    assert len(saved) == len(t) and list(saved.columns) == list(t.columns)
    assert set(t.setting) == {'preset', 'scope = first', 'scope = global', 'c = 2', 'c = 4', 'L1 × 0.5', 'L1 × 2', 'HashedNet select = last'}
    assert (t[t.level != '≥ 99 %'].seeds == 1).all() and t[t.level != '≥ 99 %'].low.isna().all()   # one seed: no interval
    assert (t[t.level == '≥ 99 %'].verdict == 'insufficient data').all()        # no level ≥ 99 % in this design
    shown, why = sensitivity_report(tmp_path/'sens', preset='smoke')
    assert why == '' and list(shown.columns)[0] == 'preset' and shown.shape == (3 + 4 + 3 + 3 * 2, 8)
    none, why = sensitivity_report(tmp_path/'sens', preset='paper')   # none of these runs is in the paper design
    assert none is None and 'sensitivity design around the paper preset' in why

def test_two_processes_share_the_work(tmp_path):
    code = ("from nncomp.runs.calibrate import run_sensitivity; from standins import STANDIN; "
            f"t = run_sensitivity({str(tmp_path/'sens')!r}, levels=(0.9, 0.98), seeds=2, sources=(), preset='smoke', "
            "engine=STANDIN, progress=False, max_batch=2); print(len(t))")
    e = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT/'tests'), str(ROOT), os.environ.get('PYTHONPATH', '')]),
             NNCOMP_STANDIN_DELAY='0.05', NNCOMP_STANDIN_LOG=str(tmp_path/'trained.log'), NNCOMP_STANDIN_BARRIER=f"{tmp_path/'barrier'}:2")
    procs = [subprocess.Popen([sys.executable, '-c', code], env=e, stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=180)[0].split() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    names = trained(tmp_path/'trained.log')
    assert len(names) == len(set(names)) == n_runs((0.9, 0.98), 2), 'a run was trained twice (or not at all)'
    assert len({l.split()[1] for l in (tmp_path/'trained.log').read_text().splitlines()}) == 2, 'both processes should train'
    assert outs[0] == outs[1]                                                    # both end with the complete table

def test_console_script(tmp_path, capsys):
    calibrate.main(['--sensitivity', '--plan', '--results', str(tmp_path/'sens'), '--sources', ''])
    out = capsys.readouterr().out
    # 152 runs, 34,960 network-epochs: c takes the paper preset's c = 1 besides 2 and 4 since calibration stage 3
    assert 'to train' in out and '152' in out and '34960' in out and not (tmp_path/'sens').exists()
    with pytest.raises(SystemExit, match='nncomp_calibrate: seeds=0 is not allowed'):
        calibrate.main(['--sensitivity', '--seeds', '0', '--results', str(tmp_path/'sens')])
    with pytest.raises(SystemExit, match=re.escape("nncomp_calibrate: level=1.5 is not allowed")):
        calibrate.main(['--sensitivity', '--levels', '0.9,1.5', '--results', str(tmp_path/'sens')])
    with pytest.raises(SystemExit, match="source='nowhere'"):
        calibrate.main(['--sensitivity', '--sources', 'nowhere', '--results', str(tmp_path/'sens')])
    with pytest.raises(SystemExit) as e: calibrate.main(['--levels', '0.9'])     # a sensitivity option without --sensitivity
    assert e.value.code == 2 and '--levels needs --sensitivity' in capsys.readouterr().err
    assert not (tmp_path/'sens').exists()
