"""Tests of nncomp.report on SYNTHETIC runs tables (tests/report_fixtures.py, never written under results/), and of the
thin report notebook run with papermill; the committed quick-preset results are read (not rewritten) when they exist."""
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nncomp import report as rp
from nncomp.methods import METHODS
from report_fixtures import null_runs, pooled_verdicts, synthetic_runs

ROOT = Path(__file__).resolve().parents[1]


# --- statistics with the seed as the unit -------------------------------------------------------------------------

def test_false_verdict_rate_is_near_nominal_with_a_shared_seed_effect():
    "No true difference, a seed effect shared across levels: 5 % nominal; the seed-level test stays near it."
    pairs = rp.paired(null_runs(2000, seed=2), 'magl1', 'magl2')
    sl = rp.seed_level(pairs)
    assert (sl.seeds == 5).all() and (sl.pairs == 5 * 8).all()            # level 0 kept: L1 and L2 differ there
    rate = np.isin(rp.verdicts(sl.lo, sl.hi, sl.seeds), ['supported', 'refuted']).mean()
    assert 0.035 <= rate <= 0.065, rate                                     # 5 % ± 3 binomial standard errors
    assert pooled_verdicts(pairs).isin(['supported', 'refuted']).mean() > 0.3   # what pooling (level, seed) did


def test_claims_use_seed_level_degrees_of_freedom():
    "The interval of a claim is the t interval of the per-seed means (n_seeds − 1 df), not of the pooled pairs."
    runs = synthetic_runs(seeds=4)
    row = rp.check_claims(runs).query("claim == 'd' and dataset == 'mnist-rot'").iloc[0]
    p = rp.paired(runs, 'magl1', 'magl2').query("dataset == 'mnist-rot'")
    per_seed = p.groupby('seed')['diff'].mean().to_numpy()
    half = stats.t.ppf(0.975, 3) * per_seed.std(ddof=1) / 2
    assert row['seeds'] == 4 and row['pairs'] == len(p)
    assert row['95% CI low'] == pytest.approx(per_seed.mean() - half) and row['95% CI high'] == pytest.approx(per_seed.mean() + half)
    assert row['wilcoxon p'] == pytest.approx(stats.wilcoxon(per_seed).pvalue)


def test_same_computation_levels_are_left_out():
    "Level 0: MagL2 and OBD are the same run and HashedNet is the dense net; neither counts in a claim."
    runs = synthetic_runs(seeds=3)
    for a, b in (('magl2', 'obd'), ('magl2', 'hashednet'), ('obd', 'hashednet')):
        assert rp.same_computation(a, b, 0.0) and 0.0 not in set(rp.paired(runs, a, b).level)
    assert 0.0 in set(rp.paired(runs, 'magl1', 'magl2').level)                # L1 and L2 train different dense nets
    assert 0.0 not in set(rp.paired(runs, 'magl1', 'hashednet').level)        # HashedNet at 0 % hashes nothing
    assert 0.0 not in set(rp.convnet_vs_hashednet(runs, 'mnist').level)
    assert not rp.same_computation('magl2', 'obd', 0.9)


def test_one_seed_is_insufficient_and_verdicts_follow_the_data():
    runs = synthetic_runs(seeds=3)
    flipped = runs.copy()
    hn = flipped.method == 'hashednet'
    flipped.loc[hn, 'test_acc'] = flipped.loc[hn, 'test_acc'] + 0.1          # HashedNet now 10 pp better
    a = rp.check_claims(flipped).query("claim == 'a' and comparison.str.startswith('MagL2 − HashedNet')")   # every matching
    assert set(a.verdict) == {'refuted'}
    one_seed = rp.check_claims(runs[runs.seed == 0]).query("claim == 'd' and comparison == 'MagL1 − MagL2'")
    assert set(one_seed.verdict) == {'insufficient data'} and (one_seed.pairs >= 3).all()   # many pairs, one seed: no interval
    two = runs[runs.level.isin([0.9, 0.98]) | runs.level.isna()]
    c_high = rp.check_claims(two).query("claim == 'c' and comparison.str.contains('levels ≥ 99')")
    assert set(c_high.verdict) == {'insufficient data'}                     # no level ≥ 99 % left
    assert not set(rp.check_claims(runs).verdict) & {'not shown'}           # the wording is 'not decided'


def test_failed_run_contributes_no_accuracy_anywhere():
    "The fixture's failed run carries a bogus 10 %: no table, point, front, pair or claim may see it."
    runs = synthetic_runs(seeds=2)
    bad = runs[runs.failed].iloc[0]
    cell = rp.study_tables(runs)[('magl2', 100)].loc[99.5, 'mnist']
    assert cell.endswith('(1), 1 failed') and not cell.startswith('10.')
    pts = rp.size_points(runs).query("dataset == 'mnist' and method == 'magl2' and point == 'H=100, 99.5 % removed'")
    assert pts.n.item() == 1 and pts.acc.item() > 50
    assert (rp.paired(runs, 'magl1', 'magl2').acc_b > 50).all()
    assert bad.run not in set(rp.histogram_runs(runs.assign(hidden=50, level=0.96, removed_fraction=0.96)).run)
    assert len(rp.failed_runs(runs)) == 1 and 'diverged' in rp.failed_runs(runs).reason[0]


def test_claim_b_names_uncovered_sizes():
    "A HashedNet smaller than every ConvNet is reported as uncovered rather than counted."
    runs = synthetic_runs(seeds=3)
    tiny = runs[(runs.method == 'hashednet') & (runs.level == 0.99)].assign(level=0.999, n_params=50)
    b = rp.check_claims(pd.concat([runs, tiny], ignore_index=True)).query("claim == 'b' and comparison.str.contains('no larger')")
    per_dataset = b[b.dataset != rp.ALL_DATASETS]      # the row over datasets combines them and names its datasets
    assert len(per_dataset) == 2 and per_dataset.note.str.contains('no ConvNet as small as HashedNet at level').all()


# --- tables, figures, registry -------------------------------------------------------------------------------------

def test_tables_show_failures_and_every_method():
    runs = synthetic_runs(seeds=2)
    tables = rp.study_tables(runs)
    assert ('hashednet', 100) in tables and ('obd', 30) in tables and not any(m == 'convnet' for m, _ in tables)
    assert tables[('obd', 30)].columns.name == f"{METHODS['obd'].label}, H = 30"


def test_labels_and_colours_come_from_the_registry():
    import matplotlib.pyplot as plt
    runs = synthetic_runs(seeds=2)
    fig = rp.accuracy_vs_bytes(runs)
    ax = fig.axes[0]
    labels = {t.get_text() for t in fig.legends[0].get_texts()}
    assert {METHODS[m].label for m in ('magl2', 'hashednet', 'convnet')} <= labels
    assert {f'{METHODS[m].label} front' for m in set(runs.method)} <= labels and 'overall Pareto front' in labels
    colours = {tuple(np.round(c.get_facecolor()[0][:3], 3)) for c in ax.collections if len(c.get_offsets())}
    import matplotlib.colors as mc
    assert tuple(np.round(mc.to_rgb(METHODS['hashednet'].color), 3)) in colours
    plt.close('all')


def test_fronts_are_pareto_optimal_for_every_method():
    pts = rp.size_points(synthetic_runs(seeds=2))
    fr = rp.fronts(pts)
    assert set(fr.front) == set(pts.method) | {'all'}
    for (ds, front), f in fr.groupby(['dataset', 'front']):
        cand = pts[pts.dataset == ds] if front == 'all' else pts[(pts.dataset == ds) & (pts.method == front)]
        for r in f.itertuples():   # nothing in the candidate set is at most as large and strictly more accurate
            assert not ((cand.x <= r.x) & (cand.valid > r.valid)).any()     # fronts are chosen on validation accuracy
        dominated = {(r.method, r.point) for r in cand.itertuples() if ((cand.x < r.x) & (cand.valid >= r.valid)).any()}
        assert not dominated & set(zip(f.method, f.point))


def test_formatted_has_no_long_floats():
    t = rp.formatted(rp.convnet_front(synthetic_runs(seeds=2)), {'n_params': 0, 'stored_bytes': 0})
    text = t.to_string()
    assert not any(len(tok.split('.')[-1]) > 2 for tok in text.split() if tok.replace('.', '', 1).replace(',', '').isdigit() and '.' in tok)


def test_shown_paths_are_relative():
    assert rp.shown_path(ROOT / 'results' / 'quick') == 'results/quick'
    assert not rp.shown_path('/home/someone/work/results/quick').startswith('/')


# --- unstated choices and calibration -------------------------------------------------------------------------------

def test_unstated_choices_are_read_from_the_preset():
    from dataclasses import replace
    from nncomp.runs import sweep
    t = rp.unstated_choices('paper').set_index('choice')
    p = sweep.PRESETS['paper']
    assert t.loc['learning rate', 'paper preset'] == f'{p.train.lr:g}'
    assert t.loc['steps / every', 'paper preset'].startswith(f'{p.schedule.steps} steps, every {p.schedule.every}')
    assert t.why.str.len().min() > 10
    changed = replace(p, train=replace(p.train, lr=0.123), name='paper')      # a preset edit shows up: nothing typed in
    old = sweep.PRESETS['paper']
    sweep.PRESETS['paper'] = changed
    try: assert rp.unstated_choices('paper').set_index('choice').loc['learning rate', 'paper preset'] == '0.123'
    finally: sweep.PRESETS['paper'] = old


def test_calibration_table_ranks_readings_by_rmse(tmp_path):
    ref = pd.DataFrame({'method': 'magl2', 'hidden': 100, 'removed_pct': [0.0, 99.0], 'dataset': 'mnist', 'acc_mean': [97.0, 90.0], 'acc_std': 0.1})
    rows = [dict(scope=s, c=c, level=l, seed=0, test_acc=a, method='magl2', hidden=100, dataset='mnist', failed=False)
            for s, c, a0, a1 in (('global', 1.0, 0.97, 0.50), ('layer', 4.0, 0.97, 0.88)) for l, a in ((0.0, a0), (0.99, a1))]
    t = rp.calibration_table(pd.DataFrame(rows), ref, ('scope', 'c'))
    assert list(t.index) == [('layer', 4.0), ('global', 1.0)]
    assert t.loc[('layer', 4.0), 'RMSE (pp)'] == pytest.approx(math.sqrt((0 + 2.0**2) / 2))
    assert t.loc[('global', 1.0), '99 %'] == pytest.approx(50.0)
    with pytest.raises(ValueError, match='reference'):
        rp.calibration_table(pd.DataFrame(rows), pd.concat([ref, ref.assign(hidden=30)]), ('scope', 'c'))


def test_the_real_reference_column_loads():
    path = rp.reference_path()
    if not path.exists(): pytest.skip(f'{path} not in this checkout')
    ref = rp.load_reference(path)
    assert len(ref) == 14 and ref.acc_mean.between(50, 100).all()


# --- the thin notebook --------------------------------------------------------------------------------------------

def _papermill(nb_out, **params):
    "Run the report notebook the way `nncomp_study` does (papermill, parameters cell found even if untagged)."
    import nbformat
    from nncomp.runs.study import run_notebook
    run_notebook(ROOT / 'nbs/study/report.ipynb', nb_out, params)
    return nbformat.read(nb_out, as_version=4)


def _outputs(nb) -> str:
    return ''.join(str(o) for c in nb['cells'] for o in c.get('outputs', []))


def test_report_notebook_on_synthetic_results(tmp_path):
    "The thin notebook renders a preset folder: figures (PNG + SVG), tables and claims (CSV); Figure 6 missing is said."
    folder = tmp_path / 'synthetic'
    folder.mkdir()
    synthetic_runs(seeds=2).to_parquet(folder / 'runs.parquet')
    nb = _papermill(tmp_path / 'report.ipynb', results=str(tmp_path), preset='synthetic')
    for name in ('accuracy_vs_params.png', 'accuracy_vs_params.svg', 'accuracy_vs_bytes.png', 'claims.csv', 'claims.txt',
                 'failed_runs.csv', 'table_magl2_h100.csv', 'table_hashednet_h100.csv', 'convnet_front.csv', 'bytes_front.csv'):
        assert (folder / name).stat().st_size > 0, name
    text = _outputs(nb)
    assert 'image/png' in text and 'diverged' in text and 'Figure 6 is not drawn' in text
    assert str(tmp_path) not in text                                      # no absolute path printed
    assert not list(folder.glob('runs/*'))                                # nothing trained


def test_report_notebook_without_results_says_so(tmp_path):
    nb = _papermill(tmp_path / 'report.ipynb', results=str(tmp_path / 'nothing'), preset='quick')
    text = _outputs(nb)
    assert 'no finished runs' in text and 'image/png' not in text


def test_report_module_never_trains():
    lib = ''.join(p.read_text() for p in sorted((ROOT / 'nncomp/report').glob('*.py')))
    src = lib + (ROOT / 'nbs/study/report.ipynb').read_text()
    assert 'run_sweep' not in src and 'train_histogram_runs' not in src and 'synthetic_runs' not in lib


def test_real_quick_results_render(tmp_path):
    "The committed quick preset's runs table renders (into a temporary folder, leaving results/ as it is)."
    parquet = ROOT / 'results/quick/runs.parquet'
    if not parquet.exists(): pytest.skip('results/quick/runs.parquet not there yet: run `make study`')
    runs = rp.load_results(parquet.parent)
    rep = rp.render_report(runs, tmp_path, label='quick')
    assert len(rep['tables']) and set(rep['claims'].claim) == {'a', 'b', 'c', 'd', 'e'}
    assert (tmp_path / 'accuracy_vs_params.png').exists() and (tmp_path / 'accuracy_vs_bytes.png').exists()
    assert set(rep['claims'].verdict) <= {'supported', 'refuted', 'not decided', 'insufficient data', 'partly: not at every size',
                                          'holds here (descriptive)', 'does not hold here (descriptive)'}
