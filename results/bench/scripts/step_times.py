"Timed loops (no profiler) of one training step: the engine's (fc_step + sgd_step) and the vmap anchor's, R = 56, FC-100, momentum 0."
from nncomp.tools.bench import _median_time
import torch, sys, time, torch.nn.functional as F
from torch import nn
from torch.func import stack_module_state, functional_call, vmap, grad
from nncomp.nets.models import MLP, fc_step
from nncomp.engine.train import FlatState, RunHyper, sgd_step, fused_update
from nncomp.config import ModelConfig, MethodConfig, RunConfig, TrainConfig
torch.set_num_threads(int(sys.argv[1]))
R, B, H = 56, 64, 100
x, y = torch.randn(6000, 784), torch.randint(0, 10, (6000,))
g = torch.Generator().manual_seed(0)
model = MLP.from_configs(ModelConfig('fc', (H,)), [MethodConfig()] * R, [0] * R)
state = FlatState(model); hyper = RunHyper([RunConfig(train=TrainConfig(lr=1e-2, momentum=0.0))] * R, 'cpu'); fused = fused_update()
def engine_step():
    fc_step(model, x, y, torch.randint(0, 6000, (1, B), generator=g), [(0, R)]); sgd_step(state, hyper, fused)
nets = [nn.Sequential(nn.Linear(784, H), nn.ReLU(), nn.Linear(H, 10)) for _ in range(R)]
params, buffers = stack_module_state(nets); base = nets[0]
def loss(p, b, xb, yb): return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)
grads = vmap(grad(loss), in_dims=(0, 0, None, None))
opt = torch.optim.SGD(params.values(), lr=1e-2, momentum=0.0, weight_decay=5e-4)
def vmap_step():
    idx = torch.randint(0, 6000, (B,), generator=g)
    for k, gk in grads(params, buffers, x[idx], y[idx]).items(): params[k].grad = gk
    opt.step()
def t(fn): return _median_time(fn, 30, 5) * 1e3   # ms; the bench's own timer (one untimed block first)
for _ in range(2): print(f'{sys.argv[1]} threads: engine step {t(engine_step):.2f} ms, vmap step {t(vmap_step):.2f} ms')
