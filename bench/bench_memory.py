"""The cost model's memory estimate against the peak resident memory an analysis adds (each spec in its own
process, after a warm-up analysis): GRADSTAB_MAX_MEMORY_MIB refuses on the estimate, so it must bound
what runs. Prints measured/estimated per spec; never pass/fail. The unit-draw cache is off here: it is the
worker's memory (GRADSTAB_DRAW_CACHE_MIB, on top of the per-analysis limit), not the analysis's.

    python bench/bench_memory.py
"""

from __future__ import annotations

import json
import subprocess
import sys

SPECS = [
    {"layers": {"depth": 100, "width": 512}},
    {"layers": {"depth": 200, "width": 128}, "batch_size": 128, "dtype": "float64"},
    {"layers": {"depth": 12, "width": 4096}},
    {"layers": {"depth": 50, "width": 256}, "activation": "sigmoid", "dtype": "float16"},
    {"layers": {"depth": 50, "width": 512}, "dtype": "float16", "verify_recommendations": False},
    {"layers": {"depth": 50, "width": 256}, "activation": "sigmoid"},
    {"layers": {"depth": 30, "width": 1024}, "dtype": "float64"},
]

CHILD = """
import json, resource, sys
from schemas.limits import Limits
from schemas.spec import ModelSpecSchema
from service.engine import analyze
from service.engine.cost import estimate_cost
from service.engine.draws import set_cache_mib
set_cache_mib(0)
spec = ModelSpecSchema(limits=Limits()).load(json.loads(sys.argv[1]))
analyze(ModelSpecSchema().load({"layers": [4, 4, 4]}))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
analyze(spec)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"estimate": estimate_cost(spec).memory_mib, "measured": after - before}))
"""


def main() -> None:
    for body in SPECS:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(body)], capture_output=True, text=True, check=True
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{json.dumps(body)}: estimated {r['estimate']:.0f} MiB, peak RSS added {r['measured']:.0f} MiB, "
            f"measured/estimated {r['measured'] / r['estimate']:.2f}"
        )


if __name__ == "__main__":
    main()
