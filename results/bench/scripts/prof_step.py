"Profile of the engine's FC step + update (R = 56, FC-100, one seed group, fp32, momentum 0.9 and 0)."
import torch, sys
from torch.profiler import profile, ProfilerActivity
from nncomp.nets.models import MLP, fc_step
from nncomp.engine.train import FlatState, RunHyper, sgd_step, fused_update
from nncomp.config import ModelConfig, MethodConfig, RunConfig, TrainConfig
torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
R, B = 56, 64
model = MLP.from_configs(ModelConfig('fc', (100,)), [MethodConfig()] * R, [0] * R)
state = FlatState(model); hyper = RunHyper([RunConfig(train=TrainConfig(lr=1e-2, momentum=float(sys.argv[2]) if len(sys.argv) > 2 else 0.9))] * R, 'cpu')
fused = fused_update()
x, y = torch.randn(6000, 784), torch.randint(0, 10, (6000,))
g = torch.Generator().manual_seed(0)
def step():
    fc_step(model, x, y, torch.randint(0, 6000, (1, B), generator=g), [(0, R)]); sgd_step(state, hyper, fused)
for _ in range(20): step()
with profile(activities=[ProfilerActivity.CPU]) as p:
    for _ in range(50): step()
print(p.key_averages().table(sort_by='self_cpu_time_total', row_limit=18, max_name_column_width=40))
