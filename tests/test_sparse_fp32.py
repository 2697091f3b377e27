"""Sparse fp32 (issue 29 item 3): every pruning method's runs get a derived run whose file (fp32 values of the alive
weights, coded relative indices, no sharing) decodes to exactly the pruned network's weights, whose byte count is the
file's length, and which a second derivation writes byte for byte the same."""
import shutil
from pathlib import Path
import pytest, torch
from nncomp.config import RunConfig, DataConfig, ModelConfig, TrainConfig, MethodConfig, ScheduleConfig
from nncomp.engine.train import train_batch, toy_data
from nncomp.methods import get_method, in_family
from nncomp.compress.ledger import decoded_state, read_header
from nncomp.runs.store import run_path, start_run, finish_run, provenance, load_module, read_run, read_json, load_runs
from nncomp.runs.derived import plan_derived, run_derived, derive, check_params, SPARSE_PARAMS

SPARSE = tuple(m for m in in_family('coding') if m.startswith('sparse-'))
TOY = toy_data(n_train=300, n_valid=60, n_test=150)


def _store(root:Path) -> Path:
    "A results folder with one run per pruning method at 90 % removed (and a dense MagL2 run), trained on toy data."
    cfgs = [RunConfig(DataConfig('mnist'), ModelConfig(hidden=(16,)), TrainConfig(epochs=2, reg=get_method(m).reg),
                      MethodConfig(get_method(m).config_name, a), ScheduleConfig(steps=1, every=1))
            for m, a in [(m, 0.9) for m in in_family('pruning')] + [('magl2', 0.0)]]
    for cfg, r in zip(cfgs, train_batch(cfgs, [0] * len(cfgs), TOY, progress=False)):
        p = run_path(root, cfg, 0); start_run(p, cfg, 0); finish_run(p, r, provenance(None, 'smoke'))
    return root


@pytest.fixture(scope='module')
def store(tmp_path_factory):
    root = _store(tmp_path_factory.mktemp('sparse'))
    counts = run_derived(root, SPARSE, load=lambda d: TOY, progress=False)
    assert counts['derived'] == len(in_family('pruning')) + 1 and counts['failed'] == 0, counts
    return root


def test_every_pruning_method_has_its_sparse_coding():
    assert {get_method(m).base for m in SPARSE} == set(in_family('pruning'))
    assert all(get_method(m).size == 'measured' for m in SPARSE)


def test_file_decodes_to_the_pruned_weights_and_counts_its_length(store):
    todo, _ = plan_derived(store, SPARSE)
    assert len(todo) == len(in_family('pruning')) + 1
    for parent, method, dest in todo:
        assert get_method(method).base == get_method(read_json(dest/'derived.json')['method']).base
        f, m = dest/'sparse.safetensors', read_json(dest/'metrics.json')
        assert not m['failed'] and m['stored_bytes'] == f.stat().st_size
        want, got = load_module(parent).state_dict(), decoded_state(f)
        assert sorted(got) == sorted(want)
        for k in want: assert torch.equal(got[k], want[k]), (method, k)        # bit for bit, pruned zeros included
        assert {lm['positions'] for lm in read_header(f)['layers'].values()} == {'gaps'}
        assert abs(m['test_acc'] - read_run(parent)[2]['test_acc']) <= 1 / len(TOY.test.y) + 1e-6
        assert m['n_alive_edges'] == sum(int((w != 0).sum()) for k, w in want.items() if k.endswith('weight'))


def test_rows_and_a_second_derivation_write_the_same_bytes(store, tmp_path):
    runs = load_runs(store)
    coded = runs[runs.method.isin(SPARSE)]
    assert set(coded.method) == set(SPARSE) and (coded.size_from == 'file').all()
    assert run_derived(store, SPARSE, load=lambda d: TOY, progress=False)['skipped'] == len(coded)   # nothing redone
    parent, method, dest = plan_derived(store, SPARSE)[0][0]
    again = tmp_path/dest.name
    derive(parent, method, again, load=lambda d: TOY)
    assert (again/'sparse.safetensors').read_bytes() == (dest/'sparse.safetensors').read_bytes()
    assert read_json(again/'derived.json') == read_json(dest/'derived.json')
    assert read_json(dest/'derived.json')['params'] == SPARSE_PARAMS == check_params(None, method)
