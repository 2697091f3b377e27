"""Test-only runs tables for nncomp.report: invented numbers, never written under results/.

`synthetic_runs` has the rough shape of the study (for examples and unit tests); `null_runs` simulates two methods
with no true difference and a seed effect shared across levels (for the false-verdict rate of the claim tests).
The report notebooks (nbs/report/) import this file from a hidden cell; pytest imports it directly."""
import math

import numpy as np
import pandas as pd
from scipy import stats


def synthetic_runs(seeds:int=3, # runs per cell
                   seed:int=0, # random seed of the invented numbers
                   datasets=('mnist', 'mnist-rot'), # which datasets to invent
                  ) -> pd.DataFrame:
    "A clearly synthetic runs table with the columns of `nncomp.runs.store.load_runs` (preset 'synthetic')."
    rng, rows = np.random.default_rng(seed), []
    base = {'mnist': 0.98, 'mnist-rot': 0.88, 'mnist-back-rand': 0.90, 'mnist-back-image': 0.85, 'fashion-mnist': 0.88}
    shift = {'magl1': 0.004, 'magl2': 0.0, 'obd': 0.0, 'random': -0.05, 'hashednet': -0.02}
    levels = {100: (0.0, 0.9, 0.98, 0.99, 0.995), 30: (0.9, 0.98)}
    def acc(ds, level, method, common):
        drop = 0.3 * level ** 40 + (0.02 * max(0, level - 0.97) / 0.03 if method == 'obd' else 0)
        return float(np.clip(base[ds] - drop + shift[method] + common + rng.normal(0, 0.002), 0, 1))
    for ds in datasets:
        for s in range(seeds):
            start = len(rows)
            common = {l: rng.normal(0, 0.004) for l in (0.0, 0.9, 0.98, 0.99, 0.995)}
            for m in ('magl2', 'magl1', 'obd', 'random'):
                for h, ls in levels.items():
                    for l in ls:
                        edges = 784 * h + h * 10
                        rows.append(dict(method=m, hidden=h, level=l, n_params=round(edges * (1 - l)) + h + 10,
                                         test_acc=acc(ds, l, m, common[l] - (h == 30) * 0.01)))
            for l in (0.0, 0.9, 0.98, 0.99):
                rows.append(dict(method='hashednet', hidden=100, level=l, n_params=round(79400 * (1 - l)) + 110,
                                 test_acc=acc(ds, l, 'hashednet', common[l])))
            for k, c, st, p in ((5, 4, 1, 2), (7, 6, 2, 2), (9, 8, 3, 3), (10, 4, 3, 4)):
                side = ((28 - k) // st + 1) // p
                n = c * k * k + c + c * side * side * 10 + 10
                rows.append(dict(method='convnet', kernel=k, channels=c, stride=st, pool=p, dropout=0.0, n_params=n,
                                 test_acc=float(base[ds] - 0.4 / math.log(n) + rng.normal(0, 0.003))))
            for r in rows[start:]: r.setdefault('dataset', ds); r.setdefault('seed', s)
    df = pd.DataFrame(rows)
    df['valid_acc'] = df.test_acc + rng.normal(0, 0.002, len(df))
    df['run'] = [f'synthetic-{i:04d}' for i in range(len(df))]
    df['failed'], df['reason'], df['preset'] = False, None, 'synthetic'
    df['stored_bytes'] = 4.0 * df.n_params + np.where(df.method.isin(['magl2', 'magl1', 'obd', 'random']) & (df.level > 0),
                                                       np.ceil((784 * df.hidden.fillna(0) + 10 * df.hidden.fillna(0)) / 8), 0)
    bad = (df.method == 'magl2') & (df.level == 0.995) & (df.seed == 0) & (df.dataset == datasets[0])
    # a failed run keeps a (bogus) accuracy here on purpose: the report must never use it
    df.loc[bad, ['failed', 'reason', 'test_acc']] = [True, 'diverged: loss is nan at epoch 3', 0.10]
    return df


def null_runs(sims:int=1000, # simulated studies, one per 'dataset' (sim0000, sim0001, ...)
              seeds:int=5, # seeds per study
              levels=(0.0, 0.5, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995), # levels shared by both methods
              seed_sd:float=0.5, # sd (pp) of a seed's effect on one method, shared by all its levels
              noise_sd:float=0.2, # sd (pp) of the rest of a run's accuracy
              common_sd:float=1.0, # sd (pp) of the (seed, level) effect shared by both methods
              seed:int=0) -> pd.DataFrame:
    "Runs of magl1 and magl2 with NO true difference: equal means, a per-(seed, method) effect shared across levels."
    rng = np.random.default_rng(seed)
    nl = len(levels)
    common = rng.normal(0, common_sd, (sims, seeds, nl, 1))
    per_seed = rng.normal(0, seed_sd, (sims, seeds, 1, 2))
    acc = 90.0 + common + per_seed + rng.normal(0, noise_sd, (sims, seeds, nl, 2))    # in %
    i, s, l, m = (a.ravel() for a in np.meshgrid(range(sims), range(seeds), range(nl), range(2), indexing='ij'))
    return pd.DataFrame({'dataset': [f'sim{k:04d}' for k in i], 'method': np.array(['magl1', 'magl2'])[m], 'hidden': 100,
                         'level': np.asarray(levels)[l], 'seed': s, 'test_acc': acc.ravel() / 100, 'failed': False})


def pooled_verdicts(pairs:pd.DataFrame) -> pd.Series:
    "The old, wrong analysis for contrast: every (level, seed) pair an independent replicate, t with pairs − 1 df."
    g = pairs.groupby('dataset')['diff']
    n, mean, sd = g.size(), g.mean(), g.std()
    half = stats.t.ppf(0.975, n - 1) * sd / np.sqrt(n)
    return pd.Series(np.where(mean - half > 0, 'supported', np.where(mean + half < 0, 'refuted', 'not decided')), index=n.index)
