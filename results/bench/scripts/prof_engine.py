"Where the bench's engine program spends its time beyond the step: cProfile of one train_batch (R = 56, FC-100, 6,000 examples, 2 epochs)."
import cProfile, pstats, torch, sys, time
from nncomp.tools.bench import engine
from nncomp.engine.train import toy_data
from nncomp.config import ModelConfig
torch.set_num_threads(2)
data = toy_data(6000, 666, 64, seed=0); m = ModelConfig('fc', (100,)); dev = torch.device('cpu')
engine(data, dev, 56, m, epochs=1)
pr = cProfile.Profile(); t0 = time.perf_counter(); pr.enable(); r = engine(data, dev, 56, m, epochs=2); pr.disable()
print('wall', round(time.perf_counter() - t0, 3), r)
pstats.Stats(pr).sort_stats('cumulative').print_stats(28)
