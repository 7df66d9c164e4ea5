#!/bin/bash
# Ferry vs Accelerate on one machine, one call (docs/benchmarks.md). Expects, next to it, jre-lib.tar.xz (jlink JRE
# + the jars) and accelerate_bench.py, and /root/ferry/torch unpacked by the previous call (stripped libtorch 2.7.1 CPU).
set -x
B=$(cd "$(dirname "$0")" && pwd)
mkdir -p /root/ferry && cd /root/ferry && tar xJf "$B/jre-lib.tar.xz" || exit 1
ls /root/ferry /root/ferry/torch; nproc; free -g | head -2; python3 -c "import torch,accelerate,transformers;print(torch.__version__,accelerate.__version__,transformers.__version__)"
set +x
export DJL_CACHE_DIR=/root/djlcache PYTORCH_LIBRARY_PATH=/root/ferry/torch PYTORCH_VERSION=2.7.1 PYTORCH_FLAVOR=cpu
T=${THREADS:-8}
J() { /root/ferry/jre/bin/java -Dai.djl.offline=true -Dai.djl.pytorch.num_threads=$T -Dai.djl.pytorch.num_interop_threads=1 -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "/root/ferry/lib/*" "$@"; }
echo "=== ferry offload ($T threads)"
J dev.ferry.examples.bench.Benchmarks offload dir=/root/fb keep=true rounds=5 coldRounds=3 2>&1 | grep -v "CudaUtils"
echo "=== accelerate ($T threads)"
PYTHONUNBUFFERED=1 python3 "$B/accelerate_bench.py" /root/fb/offload-float32 --threads $T --rounds 5 --reps 3 2>&1 | grep -v Warning
echo "=== ferry load"
J dev.ferry.examples.bench.Benchmarks load dir=/root/fb2 loadRounds=2 2>&1 | grep -v "CudaUtils"
rm -rf /root/fb /root/fb2
