#!/bin/bash
# Ferry vs Accelerate on the GPU machine (tool `run`; docs/benchmarks.md, "The GPU machine"). That machine has Python
# with torch/transformers/accelerate but no Java, and one call carries at most 64 MiB, so the run takes two calls
# on the same warm machine (it stays warm ~30 s after a call: send the second at once). Each call carries a
# git-ignored folder holding this script, accelerate_bench.py, pagecache_probe.py and its share of the artifacts:
#   call 1: gpu_run.sh unpack   jre-lib.tar.xz (jlink JRE + Ferry's jars) and torch.tar.xz.part-aa
#   call 2: gpu_run.sh run      torch.tar.xz.part-ab and torch.tar.xz.sha256
# torch.tar.xz is DJL's libtorch 2.7.1 CPU libraries (strip --strip-unneeded), tar'ed as torch/, split in two.
# `unpack` unpacks the JRE and jars into /root/ferry, keeps the first part there, prints the machine and finds a
# folder whose page cache can be dropped per file (pagecache_probe.py); `run` joins the parts and runs the
# benchmarks, each step under its own time limit. STEPS picks steps (default: all, in this order).
set -u
B=$(cd "$(dirname "$0")" && pwd)
F=${FERRY_HOME:-/root/ferry}
X=${FERRY_ARGS:-}  # extra Benchmarks options (a smaller model for a local dry run)
T=${THREADS:-8}
STEPS=${STEPS:-"offload32 acc32 offload16 acc16 load hooks acc16bf"}
stamp() { echo "=== [${SECONDS}s] $*"; }

case "${1:-}" in
unpack)
  mkdir -p $F && tar xJf "$B/jre-lib.tar.xz" -C $F && cp "$B"/torch.tar.xz.part-aa $F/ || { echo "unpack failed"; exit 1; }
  stamp "unpacked: $(ls $F | tr "\n" " ")"
  pwd; nproc; free -g | head -2; df -h /root /tmp . | sed 1d
  grep -m1 "model name" /proc/cpuinfo; grep -m1 -o -w -E "amx_bf16|avx512_bf16" /proc/cpuinfo | sort -u | tr '\n' ' '; echo
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
  dd --version | head -1; cat /proc/sys/vm/dirty_expire_centisecs /proc/sys/vm/dirty_background_ratio | tr '\n' ' '; echo
  $F/jre/bin/java -version 2>&1 | head -1
  python3 -c "import torch, accelerate, transformers; print('torch', torch.__version__, 'accelerate', accelerate.__version__, 'transformers', transformers.__version__)"
  python3 "$B/pagecache_probe.py" --out $F/benchdir /root /tmp "$PWD"
  stamp "call 1 done"
  ;;
run)
  [ -f $F/torch.tar.xz.part-aa ] || { echo "no $F/torch.tar.xz.part-aa: the machine is not the one call 1 prepared"; exit 3; }
  cat $F/torch.tar.xz.part-aa "$B"/torch.tar.xz.part-ab > $F/torch.tar.xz
  (cd $F && sha256sum -c "$B/torch.tar.xz.sha256") || exit 4
  tar xJf $F/torch.tar.xz -C $F && rm -f $F/torch.tar.xz || exit 5
  stamp "libtorch unpacked: $(ls $F/torch | tr '\n' ' ')"
  export DJL_CACHE_DIR=/root/djlcache PYTORCH_LIBRARY_PATH=$F/torch PYTORCH_VERSION=2.7.1 PYTORCH_FLAVOR=cpu
  JAVA=($F/jre/bin/java -Dai.djl.offline=true -Dai.djl.pytorch.num_threads=$T -Dai.djl.pytorch.num_interop_threads=1
        -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -cp "$F/lib/*" dev.ferry.examples.bench.Benchmarks)
  ACC=(python3 "$B/accelerate_bench.py" --threads $T --rounds 5 --reps 3 --skip-gpu)
  export PYTHONUNBUFFERED=1
  D=$(cat $F/benchdir 2>/dev/null || echo /root)/ferry-bench
  rm -rf "$D"
  # write checkpoints back right after they are written, not 30 s later in the middle of a measurement, and so
  # that the cold rounds' eviction finds no dirty page (dirty pages cannot be dropped)
  (while sleep 1; do sync; done) &
  SYNC=$!
  echo "benchmark folder $D, $T intra-op threads for DJL and torch, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  for s in $STEPS; do
    case $s in
    offload32) stamp "ferry offload float32: warm, cold"
      timeout 200 "${JAVA[@]}" offload dir=$D keep=true rounds=5 reps=3 coldRounds=5 $X 2>&1 | grep -v CudaUtils ;;
    acc32) stamp "accelerate, float32 checkpoint, float32 model"
      timeout 120 "${ACC[@]}" $D/offload-float32 --model-dtype float32 2>&1 | grep -v Warning ;;
    offload16) stamp "ferry offload bfloat16 checkpoint into float32 model: warm"
      timeout 120 "${JAVA[@]}" offload dtype=bfloat16 cold=false dir=$D keep=true rounds=5 reps=3 $X 2>&1 | grep -v CudaUtils ;;
    acc16) stamp "accelerate, bfloat16 checkpoint, float32 model (converted every forward)"
      timeout 120 "${ACC[@]}" $D/offload-bfloat16 --model-dtype float32 2>&1 | grep -v Warning ;;
    load) stamp "ferry load"
      timeout 150 "${JAVA[@]}" load dir=$D/load loadRounds=3 $X 2>&1 | grep -v CudaUtils ;;
    hooks) stamp "ferry hooks"
      timeout 90 "${JAVA[@]}" hooks dir=$D/hooks rounds=7 reps=10 2>&1 | grep -v CudaUtils ;;
    acc16bf) stamp "accelerate, bfloat16 checkpoint, bfloat16 model (no conversion; bf16 compute)"
      timeout 120 "${ACC[@]}" $D/offload-bfloat16 --model-dtype bfloat16 2>&1 | grep -v Warning ;;
    *) echo "unknown step $s" ;;
    esac
  done
  kill $SYNC
  rm -rf "$D"
  stamp "call 2 done"
  ;;
*)
  echo "usage: gpu_run.sh unpack|run" >&2; exit 2 ;;
esac
