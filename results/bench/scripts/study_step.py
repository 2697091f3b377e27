"""The step of a paper-preset MNIST batch as the study trains it: one thread, FC-100, 64 runs in two seed groups
(56 of seed 2, 8 of seed 3; MagL2, OBD, random at the preset's 14 levels, MagL2 twice), first layers masked to their final levels
(random masks: the cost depends on counts, not places), sparse first layers as `train_batch` plans them.

usage: python results/bench/scripts/study_step.py [TREE] [--dense] [--prof]
  TREE: a checkout whose nncomp to time (default: this one); an A/B of a code change is this script run on the
  checkout before and after it, alternately, with the machine otherwise idle.
"""
import sys, time, pathlib, torch
torch.set_num_threads(1)
trees = [a for a in sys.argv[1:] if not a.startswith('--')]
sys.path.insert(0, trees[0] if trees else str(pathlib.Path(__file__).resolve().parents[3]))
from nncomp.runs.sweep import sweep_spec, method_configs
from nncomp.engine.train import _Batch, toy_data, sgd_step, _fused_for, accuracy, SPARSE_BELOW

spec = sweep_spec('paper', datasets='mnist', methods=['magl2', 'obd', 'random'], hidden=[100], create=False)
cfgs = [c for m in spec.preset.methods for c in method_configs(m, spec, 'mnist') if c.model.hidden == (100,)]   # 42
runs, seeds = (cfgs + cfgs)[:56] + cfgs[:8], [2] * 56 + [3] * 8
data, dev = toy_data(45000, 5000, 512, seed=0), torch.device('cpu')
b = _Batch(runs, seeds, data, dev, True, None if '--dense' in sys.argv else SPARSE_BELOW)
b.fused = _fused_for(b.state, None, dev)
g = torch.Generator().manual_seed(0)
with torch.no_grad():
    for r, c in enumerate(runs):
        b.model.w0_mask[r].copy_((torch.rand(b.model.w0_mask.shape[1:], generator=g) >= c.method.amount).float())
    b.state.apply_masks()
perms = b.order.epoch()
def step(s): b.step(perms[:, s * 64:(s + 1) * 64]); sgd_step(b.state, b.hyper, b.fused)
for s in range(10): step(s)                                           # warm-up: compile, sparse plans
times = []
for rep in range(3):
    t0 = time.perf_counter()
    for s in range(10 + 50 * rep, 60 + 50 * rep): step(s)
    times.append((time.perf_counter() - t0) / 50)
print('ms/step (3 blocks of 50):', [round(1000 * t, 1) for t in times])
t0 = time.perf_counter(); accuracy(b.model, b.xva, b.yva); print('validation (5,000):', round(time.perf_counter() - t0, 2), 's')
if '--prof' in sys.argv:
    from torch.profiler import profile
    with profile() as p:
        for s in range(160, 190): step(s)
    print(p.key_averages().table(sort_by='self_cpu_time_total', row_limit=20))
