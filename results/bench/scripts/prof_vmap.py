"Profile of the vmap anchor's step (R = 56, FC-100, momentum 0), to compare with the engine's."
import torch, sys, torch.nn.functional as F
from torch import nn
from torch.profiler import profile, ProfilerActivity
from torch.func import stack_module_state, functional_call, vmap, grad
torch.set_num_threads(int(sys.argv[1]))
R, B, H = 56, 64, 100
nets = [nn.Sequential(nn.Linear(784, H), nn.ReLU(), nn.Linear(H, 10)) for _ in range(R)]
params, buffers = stack_module_state(nets); base = nets[0]
def loss(p, b, xb, yb): return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)
grads = vmap(grad(loss), in_dims=(0, 0, None, None))
opt = torch.optim.SGD(params.values(), lr=1e-2, momentum=0.0, weight_decay=5e-4)
x, y = torch.randn(6000, 784), torch.randint(0, 10, (6000,))
g = torch.Generator().manual_seed(0)
def step():
    idx = torch.randint(0, 6000, (B,), generator=g)
    for k, gk in grads(params, buffers, x[idx], y[idx]).items(): params[k].grad = gk
    opt.step()
for _ in range(20): step()
with profile(activities=[ProfilerActivity.CPU]) as p:
    for _ in range(50): step()
print(p.key_averages().table(sort_by='self_cpu_time_total', row_limit=14, max_name_column_width=40))
