"""Sizes measured from files: `smallest_file` picks each layer's smallest encoding and reads back exactly, never larger
than one encoding for all; `measure_runs` writes `size.json` for trained runs (two processes at once are harmless) and
the runs table counts the run by it."""
import json, os, subprocess, sys, warnings
from pathlib import Path
import pytest, torch
from torch import nn
from torch.nn.utils import prune
from nncomp.config import RunConfig, DataConfig, ModelConfig, TrainConfig, MethodConfig, ScheduleConfig
from nncomp.compress.ledger import (Encoding, best_encoding, encodings, smallest_file, to_bytes, decoded_state, encode_weight,
                           weight_parts, _encoded_bytes)
from nncomp.compress.ledger import masked_bytes
from nncomp.runs.store import run_path, start_run, finish_run, provenance, load_runs, read_run, read_json, SIZE_FILE
from nncomp.runs.derived import measure_runs, plain_module, MEASURE_CODERS

ROOT = Path(__file__).resolve().parents[1]

@pytest.mark.parametrize('amount', [0.0, 0.5, 0.9, 0.99, 0.999, 1.0])
def test_smallest_file_reads_back_and_is_never_larger(amount):
    torch.manual_seed(1)
    net = nn.Sequential(nn.Unflatten(1, (1, 12, 12)), nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(400, 60), nn.ReLU(), nn.Linear(60, 10))
    for i in (1, 4): prune.l1_unstructured(net[i], 'weight', amount=amount)
    raw, encs = smallest_file(net)
    state = decoded_state(raw)
    for name in encs: assert torch.equal(state[f'{name}.weight'], weight_parts(net.get_submodule(name))[0])
    for enc in [Encoding(), Encoding(positions='dense'), Encoding(positions='bitmap'), Encoding(gap_bits=4)]:
        assert len(raw) <= len(to_bytes(net, enc)), enc
    w, mask = weight_parts(net[4])[:2]                      # brute force over both coders agrees with best_encoding
    sizes = {e: _encoded_bytes(*encode_weight(w, mask, enc=e)) for e in encodings(('huffman', 'ans'))}
    assert sizes[best_encoding(w, mask, ('huffman', 'ans'))] == min(sizes.values())

def _store(root):
    from nncomp.engine.train import train_batch, toy_data
    toy = toy_data(n_train=300, n_test=100)
    cfgs = [RunConfig(DataConfig('mnist'), ModelConfig(hidden=(8,)), TrainConfig(epochs=1), MethodConfig('magnitude', a),
                      ScheduleConfig(steps=1, every=1)) for a in (0.0, 0.95)]
    for cfg, r in zip(cfgs, train_batch(cfgs, [0, 0], toy, progress=False)):
        p = run_path(root, cfg, 0); start_run(p, cfg, 0); finish_run(p, r, provenance(None, 'smoke'))
    return root

def test_two_processes_measure_one_store(tmp_path):
    root = _store(tmp_path)
    code = f"from nncomp.runs.derived import measure_runs; import json; print(json.dumps(measure_runs({str(root)!r}, progress=False)))"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]), OMP_NUM_THREADS='1')
    procs = [subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    for out, _ in outs:
        c = json.loads(out.strip().splitlines()[-1]); assert c['measured'] + c['skipped'] == 2 and c['failed'] == 0, c
    assert measure_runs(root, progress=False) == dict(measured=0, skipped=2, no_weights=0, failed=0)
    df = load_runs(root).set_index('run')
    for p in (root/'runs').iterdir():
        size = read_json(p/SIZE_FILE)
        assert size['stored_bytes'] == len(smallest_file(plain_module(p), MEASURE_CODERS)[0]) == df.loc[p.name, 'stored_bytes']
        assert df.loc[p.name, 'size_from'] == 'file'
        cfg, _, metrics = read_run(p)
        c = size['by_category']   # a tiny net's header outweighs its weights: compare the positions with the rule's bitmap
        if cfg.method.amount > 0: assert c['indices'] + c['code tables'] < masked_bytes(cfg, metrics) - 4 * metrics['n_params']
    assert not list((root/'runs').glob('*/*.tmp*'))      # atomic writes leave no temporary files

def test_retrained_folder_is_not_counted_by_its_old_size(tmp_path):
    root = _store(tmp_path); measure_runs(root, progress=False)
    p = next((root/'runs').iterdir()); m = json.loads((p/'metrics.json').read_text())
    m['provenance']['finished'] = '2099-01-01T00:00:00+00:00'; (p/'metrics.json').write_text(json.dumps(m))   # another run of the folder
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always'); df = load_runs(root).set_index('run')
    assert df.loc[p.name, 'size_from'] == 'rule' and any('earlier run' in str(x.message) or 'not the one' in str(x.message) for x in w)
    assert measure_runs(root, progress=False)['measured'] == 1          # measured again
    assert load_runs(root).set_index('run').loc[p.name, 'size_from'] == 'file'
