"""Time a plan search of at least 10,000 configurations.

Run: ``python benchmarks/bench_scale_search.py`` (a script, not a timed test).
"""
import statistics
import time

from rigwise.catalog.load import catalog
from rigwise.catalog.systems import get_system
from rigwise.model.estimate import TrainConfig
from rigwise.model.parallel import SearchSpace, search_plans
from rigwise.workload.models import get_model

model, gpu = get_model("llama-3.1-405b"), catalog().gpu("nvidia-h100-sxm5-80gb")
space = SearchSpace(microbatches=(1, 2, 4, 8, 16, 32, 64))
samples = []
for _ in range(5):
    t0 = time.perf_counter()
    plans = search_plans(model, gpu, 2048, TrainConfig(seq_len=8192), global_batch=2048,
                         system=get_system("meta-h100-roce"), space=space)
    samples.append(time.perf_counter() - t0)
print(f"configurations: {len(plans)}; seconds per search: median {statistics.median(samples):.2f},"
      f" min {min(samples):.2f}, max {max(samples):.2f} (raw {[round(s, 3) for s in samples]});"
      f" {len(plans) / statistics.median(samples):,.0f} configurations/s")
