"""Successive halving in the ConvNet screening design (issue 28): its stages with the stand-in engine, MNIST's finished
design planning exactly the runs it planned, the rule pending for the datasets after MNIST, and its measurement on a
one-stage store."""
import hashlib
from dataclasses import replace
from pathlib import Path
import pytest
from standins import STANDIN
from nncomp.nets.convnet import conv_grid
from nncomp.presets import PRESETS
from nncomp.runs import screen
from nncomp.runs.screen import (Design, config_keys, design_runs, halving_bounds, halving_recall, halving_runs, halving_train,
                                is_screening, run_stage, screening_files)
from nncomp.runs.store import is_done, load_runs, run_name, run_path
from nncomp.runs.sweep import conv_models

REPO = Path(__file__).resolve().parents[1]
GRID = conv_grid(kernel=(5, 9), channels=(4, 12), stride=(1, 3), pool=(2, 4), dropout=(0.0,))
HALVE = Design(delta=100.0, top_k=None, frac=0.5, halve_epochs=2, delta2=1.0, top_k2=2, subset=6)


def digest(runs) -> str: return hashlib.sha256('\n'.join(sorted(run_name(c, s) for c, s in runs)).encode()).hexdigest()[:16]
def _count(log): return len(log.read_text().splitlines()) if log.exists() else 0


def test_mnist_design_plans_the_runs_it_planned():
    "MNIST's one-stage design: the same screening and full runs as before successive halving existed (digests from main, cda2b33b)."
    d = design_runs(None, PRESETS['paper'], 'mnist')
    assert (len(d['screen']), digest(d['screen']), len(d['full']), digest(d['full']), d['unknown'], d['halve']) == \
           (1458, '0df4a0ea70fb732d', 500, 'f5223c50c0f4452e', 570, [])
    if not (REPO/'results'/'paper'/'screening'/'mnist.json').exists(): pytest.skip('no results/paper in this checkout')
    d = design_runs(REPO/'results'/'paper', PRESETS['paper'], 'mnist')      # with its candidates fixed
    assert (len(d['full']), digest(d['full']), d['unknown']) == (965, '01681298eb5b8e27', 0)


def test_halving_stages_end_to_end(tmp_path, monkeypatch):
    "Stage 'all' with halving: screening, the promoted at 2 epochs, the candidates and the subset in full; only full runs reach the report."
    from nncomp.report import load_results
    log = tmp_path/'trained.log'; monkeypatch.setenv('NNCOMP_STANDIN_LOG', str(log))
    res = tmp_path/'res'
    kw = dict(preset='quick', dataset='mnist', results=res, design=HALVE, scheduler='inline', engine=STANDIN, progress=False, models=GRID)
    run_stage('all', **kw)
    planned = design_runs(res, PRESETS['quick'], 'mnist', HALVE, GRID)
    promoted, most = halving_bounds(GRID, HALVE)
    assert len(planned['halve']) == promoted and planned['unknown'] == planned['unknown_halve'] == 0
    assert all(is_done(run_path(res, c, s)) for c, s in planned['screen'] + planned['full'])
    assert _count(log) == len(planned['screen']) + len(planned['full'])          # every run trained once
    assert {c.train.epochs for c, _ in planned['halve']} == {2} and all(f.exists() for f in screening_files(res, 'mnist', 'halve'))
    every = load_runs(res)
    assert int(is_screening(every).sum()) == 16 + promoted
    assert set(load_results(res).epochs) == {3} and len(load_results(res)) == len(planned['full'])
    run_stage('all', **kw); assert _count(log) == len(planned['screen']) + len(planned['full'])   # resumed: nothing again
    with pytest.raises(ValueError, match='delta2=2.0 is not allowed; allowed: 1.0, the value the candidates were fixed with'):
        run_stage('full', **(kw | dict(design=replace(HALVE, delta2=2.0))))


def test_pending_rule_trains_the_screening_and_fixes_nothing(tmp_path, monkeypatch):
    "A dataset after MNIST before the rule is chosen: its screening trains (the same runs under every candidate), nothing is fixed."
    monkeypatch.setattr(screen, 'OTHER_RULE', None)
    grid, res = conv_models(PRESETS['paper'])[:12], tmp_path/'res'
    kw = dict(preset='paper', dataset='mnist-rot', results=res, scheduler='inline', engine=STANDIN, progress=False, models=grid)
    assert len(run_stage('screen', **kw)) == 0 and not screening_files(res, 'mnist-rot')[1].exists()
    assert all(is_done(run_path(res, c, s)) for c, s in design_runs(res, PRESETS['paper'], 'mnist-rot', grid=grid)['screen'])
    with pytest.raises(ValueError, match="stage='halve' is not allowed; allowed: after the rule for mnist-rot is chosen"): run_stage('halve', **kw)
    run_stage('all', **kw); assert not screening_files(res, 'mnist-rot')[1].exists()
    monkeypatch.setattr(screen, 'OTHER_RULE', 'h2-d1-k15')                     # chosen: the same screening now fixes the promotion
    assert run_stage('screen', **kw).kept.sum() == halving_bounds(grid, screen.CANDIDATE_RULES['h2-d1-k15'])[0]
    assert len(run_stage('halve', **kw)) > 0 and len(run_stage('full', **kw)) > 0
    assert design_runs(res, PRESETS['paper'], 'mnist-rot', grid=grid)['full'] and not any(
        c.train.epochs == 30 for c, _ in design_runs(res, PRESETS['paper'], 'mnist-rot', grid=grid)['screen'])


def test_halving_measured_on_a_one_stage_store(tmp_path):
    "MNIST's measurement on a stand-in one-stage store: nothing to measure before the intermediate runs, a recall after."
    res, one = tmp_path/'res', Design(delta=1.0, top_k=2, subset=6)
    kw = dict(preset='quick', dataset='mnist', results=res, design=one, scheduler='inline', engine=STANDIN, progress=False, models=GRID)
    run_stage('all', **kw)
    rules = dict(half=HALVE, quarter=replace(HALVE, frac=0.25))
    runs = halving_runs(res, rules, 'quick', models=GRID, screened_with=one)
    assert len(runs) == halving_bounds(GRID, HALVE)[0]                           # the quarter's promoted are the half's
    before = halving_recall(res, rules, 'quick', models=GRID, screened_with=one)
    assert before.recall_valid.tolist()[1:] == ['', ''] and before.meets.tolist()[1:] == [None, None]
    halving_train(res, rules, 'quick', models=GRID, screened_with=one, engine=STANDIN, progress=False)
    after = halving_recall(res, rules, 'quick', models=GRID, screened_with=one)
    assert after.meets.notna().all() and (after.network_epochs.iloc[1:] <= after.at_most.iloc[1:]).all()
    assert set(config_keys(load_runs(res)[lambda df: df.epochs == 2])) == {k for c, _ in runs for k in config_keys_of(c)}


def config_keys_of(cfg) -> list:
    m = cfg.model
    return [(m.kernel, m.channels, m.stride, m.pool, float(m.dropout))]
