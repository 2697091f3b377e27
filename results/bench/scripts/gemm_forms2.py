"The engine's forward GEMM in several layouts against its weight-gradient GEMM (same FLOPs), median of 7 blocks."
from nncomp.tools.bench import _median_time
import torch, time, sys
torch.set_num_threads(int(sys.argv[1]))
R, H, B = 56, 100, 64
g = torch.Generator().manual_seed(0)
x = torch.randn(B, 784, generator=g); W = torch.randn(R * H, 784, generator=g); b = torch.randn(1, R * H, generator=g)
dz = torch.randn(R * H, B, generator=g); out = torch.empty(R * H, 784); xt = x.t().contiguous(); o2 = torch.empty(R * H, B)
o1 = torch.empty(B, R * H)
def t(fn): return _median_time(fn, 20, 7) * 1e3   # ms; the bench's own timer (one untimed block first)
forms = {'fwd addmm(b, x, W.t())  [engine]': lambda: torch.addmm(b, x, W.t()),
         'fwd addmm(b, x, W.t(), out=)': lambda: torch.addmm(b, x, W.t(), out=o1),
         'fwd mm(W, xt) -> (RH, B)': lambda: torch.mm(W, xt, out=o2),
         'fwd mm(W, x.t()) -> (RH, B)': lambda: torch.mm(W, x.t(), out=o2),
         'fwd matmul in 2 halves': lambda: [torch.mm(x, W[i:i + R * H // 2].t()) for i in (0, R * H // 2)],
         'wgrad mm(dz, x, out=)  [engine]': lambda: torch.mm(dz, x, out=out)}
for rep in range(2):
    for k, f in forms.items(): print(f'{sys.argv[1]} thr  {k:36s} {t(f):6.2f} ms')
