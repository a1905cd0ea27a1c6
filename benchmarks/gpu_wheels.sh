#!/usr/bin/env bash
# The wheels benchmarks/bench_gpu.py needs on a lent GPU machine, downloaded into .whl/ (ignored).
#
# That machine's Python (3.12) has PyTorch, torchvision, transformers, ONNX Runtime (CPU only),
# OpenCV, numba and SciPy, and cannot reach the network: what the tool needs besides travels
# as wheels, at the versions our requirements pin. About 50 MB; the working tree that travels is
# limited to 64 MiB in all. onnxruntime-gpu (255 MB) cannot travel: the salient rows then time
# the architectures in PyTorch and say so. Then, in one call (carry: .whl):
#
#   python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
#   PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 python3 benchmarks/bench_gpu.py --json $OUT/gpu.json
set -euo pipefail
cd "$(dirname "$0")/.."
pin() {  # NAME==VERSION as requirements*.txt pin it (the line for Python 3.11 and later)
    grep -h "^$1==" requirements*.txt | head -1 | cut -d';' -f1 | tr -d ' '
}
rm -rf .whl && mkdir .whl
for spec in "$(pin diffusers)" "$(pin ultralytics)" "$(pin mediapipe)" "$(pin pymatting)" \
    "$(pin isal)" ultralytics-thop==2.2.3; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl "$spec"
done
du -sh .whl
