"""Tests of nncomp.report on a SYNTHETIC runs table (made here, never written under results/), and of the thin
report notebook run with papermill; the real quick-preset results are used when they exist."""
import itertools, math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nncomp import report as rp

ROOT = Path(__file__).resolve().parents[1]


def test_wilcoxon_matches_enumeration_of_all_sign_flips():
    "The exact p-value equals the share of the 2^n sign patterns whose W+ is at least as extreme (ties included)."
    rng = np.random.default_rng(1)
    for n in (3, 6, 9):
        d = rng.choice([-2.0, -1.0, 1.0, 1.5, 3.0], n)                # small alphabet: many tied |d|
        ranks = pd.Series(np.abs(d)).rank().to_numpy()
        w = ranks[d > 0].sum()
        ws = np.array([sum(r for r, s in zip(ranks, signs) if s) for signs in itertools.product([0, 1], repeat=n)])
        p = min(1.0, 2 * min((ws <= w + 1e-9).mean(), (ws >= w - 1e-9).mean()))
        assert rp.wilcoxon_p(d) == pytest.approx(p, abs=1e-12)


def test_t_quantiles_integrate_to_975():
    "Each tabulated / expanded quantile has 97.5 % of Student's t density below it (numerical integration)."
    for df in (1, 2, 5, 30, 31, 60, 200):
        x = np.linspace(-2000 if df < 3 else -60, rp.t975(df), 2_000_001)
        pdf = math.gamma((df + 1) / 2) / (math.sqrt(df * math.pi) * math.gamma(df / 2)) * (1 + x**2 / df) ** (-(df + 1) / 2)
        tail = 0.5 - math.atan(-x[0]) / math.pi if df == 1 else 0.0   # Cauchy mass left of the grid
        assert np.trapezoid(pdf, x) + tail == pytest.approx(0.975, abs=2e-4 if df > 1 else 1e-3)


def test_verdicts_follow_the_data():
    "A claim is refuted when the data say the opposite, and insufficient with too few pairs."
    runs = rp.synthetic_runs(seeds=3)
    flipped = runs.copy()
    hn = flipped.method == 'hashednet'
    flipped.loc[hn, 'test_acc'] = flipped.loc[hn, 'test_acc'] + 0.1          # HashedNet now 10 pp better
    a = rp.check_claims(flipped).query("claim == 'a' and comparison == 'MagL2 − HashedNet'")
    assert set(a.verdict) == {'refuted'}
    one_seed = runs[runs.seed == 0]
    d = rp.check_claims(one_seed).query("claim == 'd' and comparison == 'MagL1 − MagL2'")
    assert d.pairs.max() >= 3                                              # levels pool: still enough pairs
    two = one_seed[one_seed.level.isin([0.9, 0.98]) | one_seed.level.isna()]
    c_high = rp.check_claims(two).query("claim == 'c' and comparison.str.contains('levels ≥ 99')")
    assert set(c_high.verdict) == {'insufficient data'}                   # no level ≥ 99 % left


def test_tables_show_failures_and_every_method():
    runs = rp.synthetic_runs(seeds=2)
    tables = rp.study_tables(runs)
    assert ('hashednet', 100) in tables and ('obd', 30) in tables and not any(m == 'convnet' for m, _ in tables)
    cell = tables[('magl2', 100)].loc[99.5, 'mnist']
    assert cell.endswith('(1), 1 failed'), cell
    assert len(rp.failed_runs(runs)) == 1 and 'diverged' in rp.failed_runs(runs).reason[0]


def test_claim_b_names_uncovered_sizes():
    "A HashedNet smaller than every ConvNet is reported as uncovered rather than counted."
    runs = rp.synthetic_runs(seeds=3)
    tiny = runs[(runs.method == 'hashednet') & (runs.level == 0.99)].assign(level=0.999, n_params=50)
    b = rp.check_claims(pd.concat([runs, tiny], ignore_index=True)).query("claim == 'b'")
    assert b.note.str.contains('no ConvNet as small as HashedNet at level').all()


def _papermill(nb_out, **params):
    "Run the report notebook the way `nncomp_study` does (papermill, parameters cell found even if untagged)."
    import nbformat
    from nncomp.study import run_notebook
    run_notebook(ROOT / 'nbs/study/report.ipynb', nb_out, params)
    return nbformat.read(nb_out, as_version=4)


def test_report_notebook_on_synthetic_results(tmp_path):
    "The thin notebook renders a preset folder: figures (PNG + SVG), tables and claims (CSV), shown in the notebook."
    folder = tmp_path / 'synthetic'
    folder.mkdir()
    rp.synthetic_runs(seeds=2).to_parquet(folder / 'runs.parquet')
    nb = _papermill(tmp_path / 'report.ipynb', results=str(tmp_path), preset='synthetic', train_histograms=False)
    for name in ('accuracy_vs_params.png', 'accuracy_vs_params.svg', 'claims.csv', 'claims.txt', 'failed_runs.csv',
                 'table_magl2_h100.csv', 'table_hashednet_h100.csv', 'convnet_front.csv'):
        assert (folder / name).stat().st_size > 0, name
    text = ''.join(str(o) for c in nb['cells'] for o in c.get('outputs', []))
    assert 'image/png' in text and 'supported' in text and 'diverged' in text


def test_report_notebook_without_results_says_so(tmp_path):
    nb = _papermill(tmp_path / 'report.ipynb', results=str(tmp_path / 'nothing'), preset='quick')
    text = ''.join(str(o) for c in nb['cells'] for o in c.get('outputs', []))
    assert 'no finished runs' in text and 'image/png' not in text


def test_real_quick_results_render(tmp_path):
    "The committed quick preset's runs table renders (into a temporary folder, leaving results/ as it is)."
    parquet = ROOT / 'results/quick/runs.parquet'
    if not parquet.exists(): pytest.skip('results/quick/runs.parquet not there yet: run `make study`')
    runs = rp.load_results(parquet.parent)
    rep = rp.render_report(runs, tmp_path, label='quick')
    assert len(rep['tables']) and set(rep['claims'].claim) == {'a', 'b', 'c', 'd'}
    assert (tmp_path / 'accuracy_vs_params.png').exists()
