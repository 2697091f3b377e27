"Engine program of the bench (R = 56, FC-100, 6,000 examples, 3 epochs), fp32 and bf16, median of 3."
import torch, sys, time
from nncomp.tools.bench import engine
from nncomp.engine.train import toy_data
from nncomp.config import ModelConfig
torch.set_num_threads(int(sys.argv[1]))
data = toy_data(6000, 666, 64, seed=0); m = ModelConfig('fc', (100,)); dev = torch.device('cpu')
for prec in ('fp32', 'bf16'):
    engine(data, dev, 56, m, epochs=1, precision=prec)
    r = sorted(engine(data, dev, 56, m, epochs=3, precision=prec)['network_epochs_per_s'] for _ in range(3))
    print(sys.argv[1], 'threads', prec, 'network-epochs/s', r)
