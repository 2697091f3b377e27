"""ConvNet baseline: weight counts by hand, grouped conv = reference, batched run = run alone, grid, Pareto filter, bad input;
the screening design (nncomp.runs.screen): its rule and recall on hand-made points, its costs, its stages, bad input."""
from dataclasses import replace
from pathlib import Path
import pandas as pd
import pytest, torch
from torch import nn
from nncomp.config import RunConfig, ModelConfig, MethodConfig, DataConfig, TrainConfig
from nncomp.nets.convnet import (ConvNet, conv_counts, check_conv, conv_grid, sample_grid, conv_run_configs, pareto_front,
                            pareto_mask, with_weights, CONV_TRAIN, CONV_FIELDS)
from nncomp.nets.registry import model_class
from nncomp.runs.screen import (Design, candidate_bound, check_design, config_keys, convnet_notebook, design_cost, is_screening,
                           read_ranking, recall_table, rank_screened, run_stage, screening_files, screening_recall,
                           select_candidates, subset_models)
from nncomp.runs.sweep import NOTEBOOK_PARAMETERS, PRESETS, conv_models, conv_runs, plan_runs, sweep_spec
from standins import STANDIN


@pytest.mark.parametrize('C,k,s,p,weights,biases', [
    (4, 5, 1, 2, 4 * 25 + 10 * 4 * 12 * 12, 14),      # conv map 24, pooled 12: 100 + 5760
    (12, 10, 3, 4, 12 * 100 + 10 * 12 * 1, 22),       # conv map floor(18/3)+1 = 7, pooled 1: 1200 + 120
    (8, 7, 2, 3, 8 * 49 + 10 * 8 * 3 * 3, 18)])       # conv map floor(21/2)+1 = 11, pooled 3: 392 + 720
def test_weight_counts_by_hand(C, k, s, p, weights, biases):
    assert conv_counts(C, k, s, p) == dict(weights=weights, biases=biases, n_params=weights + biases)
    net = ConvNet.from_configs(ModelConfig('conv', channels=C, kernel=k, stride=s, pool=p), [MethodConfig()] * 2, [0, 1])
    assert net.n_params().tolist() == [weights + biases] * 2 and net.n_edges() == weights
    assert sum(p[0].numel() for p in net.parameters()) == weights + biases


def test_grouped_conv_matches_torch_layers():
    cfg = ModelConfig('conv', channels=6, kernel=5, stride=2, pool=2)
    net = ConvNet.from_configs(cfg, [MethodConfig()] * 3, [0, 1, 2]).eval()
    x = torch.randn(3, 7, 784, generator=torch.Generator().manual_seed(0))
    y = net(x)
    for r in range(3):
        conv, lin = nn.Conv2d(1, 6, 5, 2), nn.Linear(net.w_fc.shape[-1], 10)
        with torch.no_grad():
            conv.weight.copy_(net.w_conv[r, :, None]); conv.bias.copy_(net.b_conv[r])
            lin.weight.copy_(net.w_fc[r]); lin.bias.copy_(net.b_fc[r])
        torch.testing.assert_close(y[r], lin(nn.MaxPool2d(2)(torch.relu(conv(x[r].view(7, 1, 28, 28)))).flatten(1)))
    torch.testing.assert_close(net(x[:1].expand(3, -1, -1)), net(x[:1].repeat(3, 1, 1)))   # shared-input path


def test_batched_run_equals_run_alone():
    "A run trained among others through the engine takes the same steps as alone (dropout included)."
    from nncomp.engine.train import train_batch, toy_data
    data = toy_data(n_train=192, n_valid=64, n_test=64)
    cfg = conv_run_configs([ModelConfig('conv', channels=5, kernel=6, stride=2, pool=3, dropout=0.2)],
                           train=replace(CONV_TRAIN, epochs=2, patience=2))[0]
    batched = train_batch([cfg] * 3, [3, 4, 5], data, progress=False)
    alone = train_batch([cfg], [4], data, progress=False)[0]
    assert alone['test_acc'] == pytest.approx(batched[1]['test_acc'], abs=1e-6)
    for name, t in alone['state'].items():
        torch.testing.assert_close(t, batched[1]['state'][name], rtol=1e-4, atol=1e-5)
    assert alone['n_params'] == conv_counts(5, 6, 2, 3)['n_params'] and alone['n_edges'] == conv_counts(5, 6, 2, 3)['weights']


def test_mixed_batch_equals_runs_alone_and_autograd():
    "Configurations of one geometry (other channels and dropout) trained in one batch end as alone, and the step by hand as autograd's."
    from nncomp.engine.train import train_batch, toy_data
    data = toy_data(n_train=192, n_valid=64, n_test=64)
    models = [ModelConfig('conv', channels=c, kernel=5, stride=2, pool=2, dropout=d) for c, d in [(6, 0.1), (3, 0.0), (4, 0.2)]]
    cfgs = conv_run_configs(models, train=replace(CONV_TRAIN, epochs=2, patience=2))
    mixed = train_batch(cfgs * 2, [0, 0, 0, 1, 1, 1], data, progress=False)
    by_autograd = train_batch(cfgs * 2, [0, 0, 0, 1, 1, 1], data, progress=False, by_hand=False)
    for r in (1, 5):
        alone = train_batch([cfgs[r % 3]], [r // 3], data, progress=False)[0]
        assert alone['test_acc'] == pytest.approx(mixed[r]['test_acc'], abs=1e-6)
        assert alone['n_params'] == mixed[r]['n_params'] == conv_counts(models[r % 3].channels, 5, 2, 2)['n_params']
        for name, t in alone['state'].items():
            assert t.shape == mixed[r]['state'][name].shape
            torch.testing.assert_close(t, mixed[r]['state'][name], rtol=1e-4, atol=1e-5)
    for a, b in zip(mixed, by_autograd):
        for name, t in a['state'].items(): torch.testing.assert_close(t, b['state'][name], rtol=1e-4, atol=1e-5)

def test_pool_backward_stays_compiled_across_the_grids_shapes():
    "A process that trains the whole grid keeps a compiled max-pool backward for more than dynamo's default 8 shapes."
    from nncomp.nets.convnet import pool_backward, first_max_grad, _compiled_first_max_grad, COMPILE_MIN
    if _compiled_first_max_grad() is None: pytest.skip('torch.compile is not usable here')
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list
    gen = torch.Generator().manual_seed(0)
    for pp in (4, 9, 16):                                    # the grid's pooling sizes; one seed group or more; one row or more
        for U, M in ((1, 1), (2, 1), (1, 12)):
            conv = torch.randn(U, M, pp, COMPILE_MIN // (U * M * pp) + 1, generator=gen).relu()
            top = conv.amax(2); dz = torch.randn(top.shape, generator=gen)
            assert torch.equal(pool_backward(conv, top, dz), first_max_grad(conv, top, dz))
    assert len(_debug_get_cache_entry_list(first_max_grad.__code__)) >= 9   # 9 shapes, each compiled (dynamo's default stops at 8)

def test_killed_batch_resumes_with_its_dropout_streams(monkeypatch, tmp_path):
    "A ConvNet batch with dropout, killed after an epoch and resumed from its checkpoint, ends as an uninterrupted one."
    import nncomp.engine.train as T
    data = T.toy_data(n_train=160, n_valid=32, n_test=32)
    models = [ModelConfig('conv', channels=c, kernel=5, stride=2, pool=2, dropout=0.3) for c in (3, 5)]
    cfgs = conv_run_configs(models, train=replace(CONV_TRAIN, epochs=3, patience=3, select='last'))
    straight = T.train_batch(cfgs, [0, 0], data, progress=False)
    real, calls = T.train_epoch, {'n': 0}
    def dies_at_2(*a, **k):
        calls['n'] += 1
        if calls['n'] == 2: raise RuntimeError('killed')
        return real(*a, **k)
    monkeypatch.setattr(T, 'CHECKPOINT_EVERY', 0.0); monkeypatch.setattr(T, 'train_epoch', dies_at_2)
    with pytest.raises(RuntimeError, match='killed'): T.train_batch(cfgs, [0, 0], data, progress=False, checkpoint=tmp_path)
    monkeypatch.setattr(T, 'train_epoch', real)
    again = T.train_batch(cfgs, [0, 0], data, progress=False, checkpoint=tmp_path)
    for a, b in zip(straight, again):
        assert b['resumes'] == 1
        for name, t in a['state'].items(): torch.testing.assert_close(t, b['state'][name], rtol=0, atol=1e-6)

def test_grid_and_sample():
    grid = conv_grid()
    assert len(grid) == 6 * 9 * 3 * 3 * 3 == len(set(grid))
    assert {m.kernel for m in grid} == set(range(5, 11)) and {m.dropout for m in grid} == {0.0, 0.1, 0.2}
    assert len(conv_grid(kernel=(27, 28), channels=(4,), dropout=(0.0,))) == 1      # only k=27, s=1, p=2 is non-empty
    s = sample_grid(10, seed=1)
    assert s == sample_grid(10, seed=1) and s != sample_grid(10, seed=2) and len(set(s)) == 10
    assert [grid.index(m) for m in s] == sorted(grid.index(m) for m in s)
    cfgs = conv_run_configs(s)
    assert all(c.train == CONV_TRAIN and c.method == MethodConfig('none') for c in cfgs)
    assert (CONV_TRAIN.batch_size, CONV_TRAIN.lr, CONV_TRAIN.reg, CONV_TRAIN.reg_strength, CONV_TRAIN.epochs) == (16, 1e-2, 'l2', 1e-3, 30)


def test_pareto_filter_hand_made_points():
    pts = [(100, 0.90), (200, 0.95), (150, 0.89), (200, 0.94), (300, 0.95), (50, 0.80), (100, 0.90), (400, 0.99)]
    assert pareto_front(pts) == [(50, 0.80), (100, 0.90), (100, 0.90), (200, 0.95), (400, 0.99)]
    assert pareto_mask([1, 2, 3], [0.3, 0.2, 0.1]).tolist() == [True, False, False]
    assert pareto_mask([1, 2, 3], [0.1, 0.2, 0.3]).tolist() == [True, True, True]
    assert pareto_front([]) == []
    runs = pd.DataFrame(dict(kernel=[5, 5, 6, 6, 7, 7], weights=[10, 10, 20, 20, 5, 5],
                             test_acc=[.875, .875, .5, .5, .625, .875]))
    front = pareto_front(runs, by=['kernel'])
    assert front.kernel.tolist() == [7, 5] and front.test_acc.tolist() == [.75, .875]   # means over seeds


def test_with_weights_on_a_runs_table():
    df = with_weights(pd.DataFrame(dict(channels=[4, 12], kernel=[5, 10], stride=[1, 3], pool=[2, 4], test_acc=[.9, .8])))
    assert df.weights.tolist() == [5860, 1320] and df.biases.tolist() == [14, 22]


@pytest.mark.parametrize('kw,msg', [
    (dict(kernel=29), 'kernel=29 is larger than the 28×28 image'),
    (dict(kernel=20, stride=3, pool=4), 'empty feature map'),
    (dict(kernel=10, stride=1, pool=20), 'empty feature map'),
    (dict(channels=0), 'channels=0 is not allowed')])
def test_bad_geometry_fails_before_training(kw, msg, monkeypatch):
    import nncomp.engine.train as T
    model = ModelConfig('conv', **kw)
    with pytest.raises(ValueError, match='allowed') as e: conv_run_configs([model])
    assert msg in str(e.value)
    with pytest.raises(ValueError, match='allowed'): check_conv(model.channels, model.kernel, model.stride, model.pool)
    data = T.toy_data(n_train=64, n_valid=16, n_test=16)
    monkeypatch.setattr(T, 'sgd_step', lambda *a: pytest.fail('trained despite bad input'))
    with pytest.raises(ValueError, match='allowed'):
        T.train_batch([RunConfig(model=model, train=TrainConfig(epochs=1, batch_size=16))], [0], data, progress=False)


def test_other_bad_input():
    with pytest.raises(ValueError, match="'hashednet' is not allowed"):
        ConvNet.from_configs(ModelConfig('conv'), [MethodConfig('hashednet', 0.5)], [0])
    with pytest.raises(ValueError, match='n=0 is not allowed'): sample_grid(0)
    with pytest.raises(ValueError, match="unknown grid axes"): conv_grid(width=(3,))
    with pytest.raises(ValueError, match="missing"): pareto_front(pd.DataFrame(dict(a=[1])))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    cfg = ModelConfig('conv', channels=6, kernel=5, stride=2, pool=2, dropout=0.1)
    cpu = ConvNet.from_configs(cfg, [MethodConfig()] * 2, [0, 1]).eval()
    gpu = ConvNet.from_configs(cfg, [MethodConfig()] * 2, [0, 1], device='cuda').eval()
    x = torch.randn(2, 8, 784)
    torch.testing.assert_close(gpu(x.cuda()).detach().cpu(), cpu(x).detach(), rtol=1e-3, atol=1e-3)
    from nncomp.engine.train import train_batch, toy_data
    run = conv_run_configs([cfg], train=replace(CONV_TRAIN, epochs=1, patience=1))[0]
    assert not any(r['failed'] for r in train_batch([run] * 2, [0, 1], toy_data(128, 32, 32), device='cuda', progress=False))


# ---- the screening design (nncomp.runs.screen): rule, recall, costs, stages, bad input ----


def _pts():
    "Hand-made screening results: (name, parameters, validation accuracy %)."
    return pd.DataFrame(dict(name=list('ABCDEFGHIJ'), n_params=[150, 200, 250, 400, 400, 800, 1200, 1500, 2000, 4000],
                             valid_acc=[92.0, 91.0, 93.5, 93.0, 95.0, 94.8, 96.0, 95.9, 95.2, 97.0]))


def test_selection_rule_hand_made_points():
    "Front staircase 92.0 | 93.5 | 95.0 | 96.0 | 97.0; buckets of half a decade: [100, 316), [316, 1000), [1000, 3162), [3162, 10000)."
    r = rank_screened(_pts(), delta=0.5, top_k=1, per_decade=2)
    assert r.gap.round(2).tolist() == [0.0, 1.0, 0.0, 2.0, 0.0, 0.2, 0.0, 0.1, 0.8, 0.0]
    assert r.bucket.tolist() == [4, 4, 4, 5, 5, 5, 6, 6, 6, 7] and r['rank'].tolist() == [1, 3, 2, 3, 1, 2, 1, 2, 3, 1]
    def kept(**kw): return select_candidates(_pts(), per_decade=2, **kw).name.tolist()
    assert kept(delta=0.5, top_k=1) == list('AEGJ')                  # the cap: one per bucket, the smallest gap first
    assert kept(delta=0.5, top_k=2) == kept(delta=0.5, top_k=None) == list('ACEFGHJ')
    assert kept(delta=1.0, top_k=None) == list('ABCEFGHIJ')          # D is 2 pp below the front
    assert kept(delta=0.0, top_k=None) == list('ACEGJ')              # δ = 0: the screening front itself
    c = select_candidates(_pts(), delta=0.5, top_k=2, per_decade=2)
    assert c.set_index('name').why['F'] == '0.20 pp below the screening front, #2 of its size bucket [316, 1,000)'
    assert r.set_index('name').why['D'] == '2.00 pp below the screening front (more than δ = 0.5 pp)'


def test_recall_hand_made():
    cols = list(CONV_FIELDS) + ['n_params', 'valid_acc']   # the front is chosen on validation
    full = pd.DataFrame([(5, 4, 3, 4, 0.0, 300, 96.0), (5, 4, 3, 4, 0.2, 300, 95.0), (6, 6, 3, 4, 0.0, 500, 97.5),
                         (7, 6, 2, 2, 0.0, 800, 97.0), (5, 9, 2, 3, 0.1, 1000, 98.0)], columns=cols)
    cands = full.iloc[[1, 3, 4]]                # the front is 300 (96.0), 500 (97.5), 1000 (98.0): only 1000 was kept
    res = screening_recall(full, cands)
    assert (res['front'], res['kept']) == (3, 1) and res['recall'] == pytest.approx(1 / 3)
    assert res['table'].shortfall.tolist() == pytest.approx([1.0, 2.5, 0.0])   # best kept at ≤ 300: 95.0; at ≤ 500: 95.0
    assert screening_recall(full, full)['recall'] == 1.0 and screening_recall(full, full)['max_shortfall'] == 0.0


def test_planning_counts_paper_mnist():
    cost = design_cost('paper', 'mnist')
    assert cost.stage.tolist() == ['screen', 'full: candidates', 'recall: subset', 'design', 'full grid (PROTOCOL §3)']
    assert cost.configurations.tolist() == [1458, 114, 100, 1458, 1458]
    assert cost.runs.tolist() == [1458, 570, 500, 2528, 7290]
    assert cost.network_epochs.tolist() == [4374, 17100, 15000, 36474, 218700]
    assert cost['share_%'].tolist() == [2.0, 7.8, 6.9, 16.7, 100.0]
    assert cost['hours_at_0.5'].tolist() == [2.4, 9.5, 8.3, 20.3, 121.5]
    grid = conv_models(PRESETS['paper'])
    assert candidate_bound(grid, 15, 4) == 9 + 7 * 15 and candidate_bound(grid, None, 4) == 1458
    assert design_cost('paper', 'mnist', Design(screen_epochs=2, screen_seeds=2)).network_epochs[0] == 1458 * 2 * 2
    known = grid_frame_of(subset_models(grid, Design())[:30])      # 30 of the subset's configurations are candidates
    assert design_cost('paper', 'mnist', candidates=known).configurations.tolist()[1:3] == [30, 70]


def grid_frame_of(models):
    return pd.DataFrame([{f: getattr(m, f) for f in CONV_FIELDS} for m in models])


def test_full_runs_are_the_sweeps_runs(tmp_path):
    "A candidate's full runs are the very runs the preset's ConvNet sweep plans: shared in the store."
    spec = sweep_spec('paper', ['mnist'], ['convnet'], results=tmp_path)
    assert conv_runs(spec.preset, 'mnist', conv_models(spec.preset)) == plan_runs(spec)


@pytest.mark.parametrize('kw,msg', [
    (dict(design=Design(delta=-1)), 'delta=-1 is not allowed; allowed: percentage points ≥ 0'),
    (dict(design=Design(delta=float('nan'))), 'delta=nan is not allowed'),
    (dict(design=Design(subset=1459)), 'subset=1459 is not allowed; allowed: an int in 1..1458 (the 1458 configurations screened)'),
    (dict(design=Design(screen_epochs=30)), "screen_epochs=30 is not allowed; allowed: an int in 1..29 (fewer than the preset's 30"),
    (dict(design=Design(top_k=0)), 'top_k=0 is not allowed; allowed: an int ≥ 1 or None'),
    (dict(dataset='mnist-upside-down'), "dataset='mnist-upside-down' is not allowed; allowed: mnist, mnist-rot"),
    (dict(preset='smoke'), "preset='smoke' is not allowed; allowed: a preset whose ConvNets train at least 2 epochs"),
    (dict(stage='pilot'), "stage='pilot' is not allowed; allowed: plan, screen, full, recall, summary")])
def test_bad_input_fails_before_training(tmp_path, kw, msg):
    kw = dict(stage='screen', preset='paper', dataset='mnist') | kw
    with pytest.raises(ValueError, match='allowed') as e:
        run_stage(kw.pop('stage'), results=tmp_path/'res', engine=STANDIN, scheduler='inline', progress=False, **kw)
    assert msg in str(e.value)
    assert not (tmp_path/'res').exists()


def _count(log): return len(log.read_text().splitlines()) if log.exists() else 0


def test_stages_resume_and_stay_fixed(tmp_path, monkeypatch, capsys):
    "The whole design with the stand-in engine: each stage resumes, the candidates are fixed once, the report never sees screening runs."
    from nncomp.report import load_results
    log = tmp_path/'trained.log'; monkeypatch.setenv('NNCOMP_STANDIN_LOG', str(log))
    grid = conv_grid(kernel=(5, 9), channels=(4, 12), stride=(1, 3), pool=(2, 4), dropout=(0.0,))
    d, res = Design(delta=1.0, top_k=2, subset=6), tmp_path/'res'
    kw = dict(preset='quick', dataset='mnist', results=res, design=d, scheduler='inline', engine=STANDIN, progress=False, models=grid)
    with pytest.raises(ValueError, match="stage='full' is not allowed; allowed: after the screening of mnist has finished"): run_stage('full', **kw)
    ranking = run_stage('screen', **kw)
    assert len(ranking) == 16 and _count(log) == 16 and all(f.exists() for f in screening_files(res, 'mnist'))
    cands = ranking[ranking.kept]
    assert 0 < len(cands) <= candidate_bound(grid, 2, 4)
    run_stage('screen', **kw); assert _count(log) == 16                        # resumed: nothing trained again
    with pytest.raises(ValueError, match=r"top_k=3 is not allowed; allowed: 2, the value the candidates were fixed with"):
        run_stage('full', **(kw | dict(design=Design(delta=1.0, top_k=3, subset=6))))
    full = run_stage('full', **kw)
    assert sorted(config_keys(full)) == sorted(config_keys(cands)) and full.runs.tolist() == [3] * len(cands)
    assert _count(log) == 16 + 3 * len(cands)
    subset = set(config_keys(grid_frame_of(subset_models(grid, d))))
    run_stage('recall', **kw)
    new = len(subset - set(config_keys(cands)))
    assert _count(log) == 16 + 3 * len(cands) + 3 * new                         # subset configurations that are candidates train once
    cost = run_stage('summary', **kw)
    assert cost.configurations.tolist()[:3] == [16, len(cands), new] and 'screening recall' in capsys.readouterr().out
    every = load_results(res)                                                   # the report's table
    assert len(every) == 3 * (len(cands) + new) and set(every.epochs) == {3}    # no screening run in it
    assert read_ranking(res, 'mnist', check_design(d, PRESETS['quick'], 16), 16).kept.sum() == len(cands)


def test_all_trains_the_candidates_before_the_recall_subset_once_screened(tmp_path, monkeypatch):
    "Stage 'all' after a complete screening: the candidates (they decide the front) first, then the rest of the recall subset."
    from nncomp.config import run_id
    from nncomp.runs.screen import models_of
    log = tmp_path/'trained.log'; monkeypatch.setenv('NNCOMP_STANDIN_LOG', str(log))
    grid = conv_grid(kernel=(5, 9), channels=(4, 12), stride=(1, 3), pool=(2, 4), dropout=(0.0,))
    d = Design(delta=1.0, top_k=2, subset=6)
    kw = dict(preset='quick', dataset='mnist', results=tmp_path/'res', design=d, scheduler='inline', engine=STANDIN, progress=False, models=grid)
    ranking = run_stage('screen', **kw); n = _count(log)
    run_stage('all', **kw)
    order = [l.split()[0] for l in log.read_text().splitlines()[n:]]
    cands = {f'{run_id(c)}-s{s}' for c, s in conv_runs(PRESETS['quick'], 'mnist', models_of(ranking[ranking.kept]))}
    subset = {f'{run_id(c)}-s{s}' for c, s in conv_runs(PRESETS['quick'], 'mnist', subset_models(grid, d))}
    assert set(order[:len(cands)]) == cands and set(order) == cands | subset and len(order) == len(set(order))
    assert subset - cands                                                       # the design has recall runs to train after them

def toy_bundle(data, device=None):
    "A loader for the real engine in tests: the engine's synthetic data, whatever the dataset."
    from nncomp.engine.train import toy_data
    return toy_data(n_train=192, n_valid=64, n_test=64)


def test_real_engine_screening_runs_are_told_apart(tmp_path):
    "Real training on toy data: screening runs record fewer epochs, the report leaves them out, the recall is the report's front's."
    from nncomp.report import convnet_front, load_results
    engine = {'train': 'nncomp.engine.train:train_batch', 'key': 'nncomp.engine.train:batch_key', 'load': f'{__name__}:toy_bundle'}
    grid = conv_grid(kernel=(5, 9), channels=(4, 8), stride=(2, 3), pool=(2,), dropout=(0.0,))
    d, res = Design(delta=0.5, top_k=None, subset=4), tmp_path/'res'
    kw = dict(preset='quick', dataset='mnist', results=res, design=d, scheduler='inline', engine=engine, progress=False, models=grid)
    for stage in ('screen', 'full', 'recall'): run_stage(stage, **kw)
    from nncomp.runs.store import load_runs
    every = load_runs(res)
    assert sorted(every[is_screening(every)].epochs.unique()) == [1] and is_screening(every).sum() == 8
    shown = load_results(res)
    assert len(shown) == len(every) - 8 and set(shown.epochs) == {3}
    p, dd = PRESETS['quick'], check_design(d, PRESETS['quick'], len(grid))
    ranked = read_ranking(res, 'mnist', dd, len(grid))
    r = recall_table(res, p, 'mnist', dd, grid, ranked)
    subset = set(config_keys(grid_frame_of(subset_models(grid, dd))))
    sub = shown[[k in subset for k in config_keys(shown)]]
    front = set(config_keys(convnet_front(sub)))                               # the report's front of the subset's full runs
    kept = set(config_keys(ranked[ranked.kept]))
    assert r['front'] == len(front) and r['recall'] == pytest.approx(len(front & kept) / len(front))


def test_convnet_notebook_parameters_and_dispatch(tmp_path):
    import papermill
    nb = Path(__file__).parents[1]/'nbs'/'study'/'convnet.ipynb'
    assert {p['name'] for p in papermill.inspect_notebook(str(nb)).values()} == set(NOTEBOOK_PARAMETERS['convnet'])
    summary = convnet_notebook('smoke', tmp_path/'sweep', scheduler='inline', engine=STANDIN, progress=False)   # stage None: the sweep
    assert list(summary.columns) == ['mnist'] and len(summary) == 1
    plan = convnet_notebook('paper', tmp_path/'none', datasets='mnist', stage='plan', top_k=10)
    assert plan.configurations.tolist()[1] == 79 and set(plan.dataset) == {'mnist'}
    with pytest.raises(ValueError, match="epochs=3 is not allowed; allowed: None with a screening stage"): convnet_notebook('paper', stage='screen', epochs=3)
    with pytest.raises(ValueError, match="delta=0.5 is not allowed; allowed: None unless `stage`"): convnet_notebook('quick', delta=0.5)
    with pytest.raises(ValueError, match="parameter='deltas' is not allowed"): convnet_notebook('paper', stage='plan', deltas=0.5)


def test_paper_preset_finds_its_front_by_the_design(tmp_path, monkeypatch):
    "`conv_design='screen'`: the ConvNet notebook of the paper preset runs the whole design (stage 'all'), the quick one its grid."
    import nncomp.runs.screen as screen
    calls = []
    monkeypatch.setattr(screen, 'run_stage', lambda stage, preset, ds, *a, **k: calls.append((stage, preset, ds)) or pd.DataFrame())
    convnet_notebook('paper', tmp_path, datasets='mnist', progress=False, delta=1.0)
    assert calls == [('all', 'paper', 'mnist')]
    assert PRESETS['quick'].conv_design == 'grid' and PRESETS['paper'].conv_design == 'screen'
