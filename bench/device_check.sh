#!/usr/bin/env bash
# Every GPU check in one run (at most ~8 minutes on one NVIDIA GPU with its own CUDA build of torch):
#   1. the CUDA tests (tests/engine/test_cuda.py and everything marked cuda),
#   2. the real server with 2 workers answering device cuda, auto and cpu, and /v1/capabilities,
#   3. the GPU benchmark (bench/bench_gpu.py) with its ratios to a same-run torch.mm,
#   4. depth 100 × width 8192 at batch 8: its peak device memory against the plan (bench/bench_gpu.py --memory).
# Output goes to stdout and, where $OUT is set, to $OUT/device_check.log.
# Dependencies other than torch may come as wheels in .whl/ (installed into /tmp/site first).
#   bash bench/device_check.sh [--quick]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
LOG=${OUT:-/tmp}/device_check.log
exec > >(tee "$LOG") 2>&1
if compgen -G ".whl/*.whl" >/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export PYTHONUNBUFFERED=1
status=0
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$PY" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print("torch", torch.__version__, torch.cuda.get_device_name())' || exit 1

echo "== 1. CUDA tests"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider -o addopts= tests/engine/test_cuda.py tests/engine/test_gradstats.py \
  tests/engine/test_lecture_cases.py tests/engine/test_placement.py tests/engine/test_memory_plan.py || status=1

echo "== 2. the server: 2 workers on the GPU"
timeout 150 "$PY" bench/device_server_check.py || status=1

echo "== 3. GPU benchmark"
timeout 300 "$PY" bench/bench_gpu.py "$@" || status=1

echo "== 4. depth 100 x width 8192, batch 8: peak memory against the plan"
timeout 240 "$PY" -c 'import sys; sys.argv = ["bench_gpu.py"]; sys.path.insert(0, "bench"); import bench_gpu; bench_gpu.memory(True)' \
  || status=1
echo "device_check: exit $status"
exit $status
