#!/bin/bash
# Ferry's GPU harness: one script for a GPU machine with Python, torch, a compiler and CMake but no Java.
#
#   bash gpu/harness.sh OUT_DIR [STEP ...]        (from a checkout holding ship/gpu.tar.xz, made by gpu/pack.sh)
#
# STEPS (default: setup tests small):
#   setup  unpack the JRE, jars and sources into $FERRY_HOME (default /root/ferry), build DJL's JNI against this
#          machine's torch (gpu/build-djl-jni.sh); skipped when already done (a second call on the same machine)
#   tests  Ferry's GPU tests (JUnit tag "gpu") from the jars, through JUnit's console launcher
#   small  TinyLlama-shaped 1.1B fp16: layers 11-21 in CPU memory, and all on gpu0 (also plain transformers and
#          Ferry with no hooks), Ferry and Accelerate with and without preload; torch's pinned/pageable copy speed
#   big    Llama-3-8B-shaped fp16 (16 GB): max_memory 0=4GiB with the rest in CPU memory, then layers 16-31 on disk
#   overlap  the 1.1B with layers 11-21 in CPU memory: blocks copied on a copy stream of their own against in order with
#          the compute, 6 and 1 blocks ahead; all on gpu0 with fused layers replayed from CUDA graphs, fused layers
#          without graphs, fused attention only, separate ops; the link limit
#   batch  the 8B under 0=4GiB decoding batches of 1, 8 and 32 rows, Ferry and Accelerate
#   int8   issue 19's int8 row: the Llama-3-8B-shaped checkpoint (made first if missing) under Accelerate's 0=4GiB map
#          (the rest in CPU memory), Ferry with int8 weights quantized at load against Ferry fp16, same map, same run,
#          and Accelerate fp16 beside them (INT8_ACCELERATE=0 leaves it out); then int8 under Ferry's own 0=4GiB plan at
#          int8 sizes (more layers resident), each also at 2 blocks ahead, and with int8 layers fused
#          (INT8_FUSED=0 leaves those out); about 8-9 minutes with the checkpoint: INT8_ACCELERATE=0 for a shorter call
#   int8own  int8 against fp16 with each planned by Ferry at its own sizes under 0=4GiB (the embedding, which offloaded
#          streams only the rows it looks up, planned after the layers), 2 and 1 blocks ahead, with Accelerate's fp16
#          map beside them as the baseline; about 5 minutes with the checkpoint
#   profile  the 1.1B all on gpu0 under a Java Flight Recording, CUDA graphs on and off: where the forward thread's
#          samples stop (JfrSummary), about 1 minute
#   serve  ferry serve under load on the 1.1B fp16 all on gpu0: 64 streaming clients for 60 s, batched and one
#          request at a time (ServeLoadBenchmark)
#   moeckpt  writes the Qwen3-MoE-shaped fp16 checkpoint (13.7 GB, 10 layers x 128 experts, top-8) and its map
#   moe    on it (made first if missing): attention, norms, routers, embeddings and head on gpu0 (1.6 GB, within
#          0=4GiB), every layer's experts in CPU memory; Ferry fetches only the routed experts, Accelerate moves each
#          layer's experts module whole. Run "setup moeckpt" and "moe" as two calls to stay under 10 minutes each
# Writes OUT_DIR/summary.json (every result line), OUT_DIR/<step>.log and OUT_DIR/junit/ (XML reports).
set -u
OUT=$(mkdir -p "${1:?OUT_DIR}" && cd "$1" && pwd); shift
STEPS=${*:-setup tests small}
H=$(cd "$(dirname "$0")/.." && pwd)
F=${FERRY_HOME:-/root/ferry}
# the fixtures travel with the checkout (testdata/), not in the pack: one device call carries 64 MiB in all
FIX=${FERRY_FIXTURES:-$H/testdata}
W=${FERRY_WORK:-/root/ferry-work}
stamp() { echo "=== [${SECONDS}s] $*"; }
TORCH=$(python3 -c "import torch, os; print(os.path.dirname(torch.__file__))")
TV=$(python3 -c "import torch; print(torch.__version__.split('+')[0])")
CUDA_LIB=$(python3 - <<'PY'
import glob, os, torch
cands = glob.glob(os.path.join(os.path.dirname(os.path.dirname(torch.__file__)), "nvidia", "**", "libcudart.so*"), recursive=True)
cands += glob.glob("/usr/local/cuda*/lib64/libcudart.so*")
print(os.path.dirname(sorted(cands)[0]) if cands else "")
PY
)

setup() {
  if [ -f "$TORCH/lib/libdjl_torch.so" ] && [ -f "$TORCH/lib/libferry_torch.so" ] && [ -x "$F/jre/bin/java" ]; then stamp "setup: already done"; return 0; fi
  mkdir -p "$F" && tar xJf "$H/ship/gpu.tar.xz" -C "$F" --strip-components=1 || { echo "unpack failed"; return 1; }
  stamp "unpacked into $F"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc; free -g | sed -n 2p
  python3 -c "import torch, accelerate, transformers; print('torch', torch.__version__, 'accelerate', accelerate.__version__, 'transformers', transformers.__version__)"
  bash "$F/build-djl-jni.sh" "$F/djl" "$TORCH" "$F/jre" || return 1
  # Ferry's own native library (copy streams, fused attention); Ferry runs without it, so a failure is reported only
  bash "$F/build-ferry-native.sh" "$F/native" "$TORCH" "$F/jre" || echo "Ferry's native library did not build"
  if [ -n "$CUDA_LIB" ] && [ ! -e "$CUDA_LIB/libcudart.so" ]; then ln -s "$(ls "$CUDA_LIB"/libcudart.so.* | head -1)" "$CUDA_LIB/libcudart.so"; fi
  stamp "JNI built; CUDA runtime in $CUDA_LIB: $(ls "$CUDA_LIB" | tr '\n' ' ')"
}

export PYTORCH_LIBRARY_PATH=$TORCH/lib PYTORCH_VERSION=$TV PYTORCH_FLAVOR=cu${TORCH_CUDA:-130}
export TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1
export LD_LIBRARY_PATH=$TORCH/lib:${CUDA_LIB}:${LD_LIBRARY_PATH:-} DJL_CACHE_DIR=/root/djlcache PYTHONUNBUFFERED=1
# FERRY_JAVA_OPTS: settings for every Java run of this call (e.g. -Dferry.cudaGraphs=off)
JAVA=("$F/jre/bin/java" ${FERRY_JAVA_OPTS:-} -Dai.djl.offline=true -Djna.library.path="$CUDA_LIB" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn)
BENCH=("${JAVA[@]}" -cp "$F/lib/*" dev.ferry.examples.bench.DecodeBenchmark)
ACC=(python3 "$F/accelerate_decode.py")

tests() {
  FERRY_FIXTURES=$FIX timeout 400 "${JAVA[@]}" -Dferry.fixtures="$FIX" -Dferry.requireTorchNative=true -jar "$F"/tools/junit-platform-console-standalone-*.jar execute \
    --class-path "$F/test-classes/pytorch:$F/test-classes/core:$(ls "$F"/tools/assertj-*.jar "$F"/lib/*.jar | tr '\n' ':')" \
    --select-class dev.ferry.pytorch.CudaGoldenTest --select-class dev.ferry.pytorch.MoeCudaTest \
    --select-class dev.ferry.pytorch.TorchNativeCudaTest --select-class dev.ferry.pytorch.quant.Int8CudaTest \
    --include-tag gpu --details tree --disable-banner \
    --reports-dir "$OUT/junit"
}

# row NAME -- command...: runs a variant, keeps its JSON line
row() {
  local name=$1; shift; shift
  stamp "$name"
  timeout "${ROW_TIMEOUT:-240}" "$@" name="$name" 2>&1 | grep -v "^WARNING" | tee -a "$OUT/rows.raw"
}
arow() {
  local name=$1; shift; shift
  stamp "$name"
  timeout "${ROW_TIMEOUT:-240}" "$@" --name "$name" 2>&1 | grep -v "Warning\|warn(" | tee -a "$OUT/rows.raw"
}

map_json() { python3 - "$@" <<'PY'
import json, sys
out, layers, lo, hi, where = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
m = {"model.embed_tokens": 0}
for i in range(layers):
    m[f"model.layers.{i}"] = where if lo <= i <= hi else 0
m.update({"model.norm": 0, "model.rotary_emb": 0, "lm_head": 0})
json.dump(m, open(out, "w"))
PY
}

small() {
  local C=$W/tinyllama-1.1b
  [ -f "$C/config.json" ] || python3 "$F/make_checkpoint.py" "$C" tinyllama-1.1b | tee -a "$OUT/rows.raw"
  echo '{"": 0}' > "$W/all-gpu0.json"
  map_json "$W/cpu-11-21.json" 22 11 21 cpu
  python3 "$F/accelerate_decode.py" --h2d $((1 << 30)) | tee -a "$OUT/rows.raw"
  local P=LlamaDecoderLayer
  row "1.1B fp16, layers 11-21 in CPU memory, decode: ferry" -- "${BENCH[@]}" "$C" "$W/cpu-11-21.json"
  row "1.1B fp16, layers 11-21 in CPU memory, decode: ferry preload" -- "${BENCH[@]}" "$C" "$W/cpu-11-21.json" preload=$P
  arow "1.1B fp16, layers 11-21 in CPU memory, decode: accelerate" -- "${ACC[@]}" "$C" "$W/cpu-11-21.json" --reps 2
  arow "1.1B fp16, layers 11-21 in CPU memory, decode: accelerate preload" -- "${ACC[@]}" "$C" "$W/cpu-11-21.json" --preload $P --reps 2
  row "1.1B fp16, all on gpu0, decode: ferry" -- "${BENCH[@]}" "$C" "$W/all-gpu0.json"
  row "1.1B fp16, all on gpu0, decode: ferry preload" -- "${BENCH[@]}" "$C" "$W/all-gpu0.json" preload=$P
  row "1.1B fp16, all on gpu0, decode: ferry no hooks" -- "${BENCH[@]}" "$C" plain
  arow "1.1B fp16, all on gpu0, decode: accelerate" -- "${ACC[@]}" "$C" "$W/all-gpu0.json"
  arow "1.1B fp16, all on gpu0, decode: transformers plain" -- "${ACC[@]}" "$C" plain
}

big() {
  local C=$W/llama3-8b
  [ -f "$C/config.json" ] || python3 "$F/make_checkpoint.py" "$C" llama3-8b | tee -a "$OUT/rows.raw"
  python3 "$F/accelerate_decode.py" --auto-map "$C" "$W/8b-4gib.json" 0=4GiB | tee -a "$OUT/maps.log" >/dev/null
  python3 "$F/accelerate_decode.py" --auto-map "$C" "$W/8b-4gib-disk.json" 0=4GiB 16 | tee -a "$OUT/maps.log" >/dev/null
  local P=LlamaDecoderLayer
  row "8B fp16, 0=4GiB, rest in CPU memory, decode: ferry" -- "${BENCH[@]}" "$C" "$W/8b-4gib.json" preload=$P prompt=128 new=16 reps=2
  arow "8B fp16, 0=4GiB, rest in CPU memory, decode: accelerate" -- "${ACC[@]}" "$C" "$W/8b-4gib.json" --preload $P --new 6 --reps 1
  row "8B fp16, 0=4GiB, layers 16-31 on disk (warm), decode: ferry" -- "${BENCH[@]}" "$C" "$W/8b-4gib-disk.json" preload=$P new=16 reps=2
  arow "8B fp16, 0=4GiB, layers 16-31 on disk (warm), decode: accelerate" -- "${ACC[@]}" "$C" "$W/8b-4gib-disk.json" --preload $P --new 6 --reps 1 --offload-folder "$W/acc-offload"
}

# a dense row for a new family: Qwen3-8B shape (q/k norm) under 0=4GiB, the rest in CPU memory, against Accelerate
dense() {
  local C=$W/qwen3-8b
  [ -f "$C/config.json" ] || python3 "$H/gpu/make_checkpoint.py" "$C" qwen3-8b | tee -a "$OUT/rows.raw"
  python3 "$H/gpu/accelerate_decode.py" --auto-map "$C" "$W/qwen3-8b-4gib.json" 0=4GiB | tee -a "$OUT/maps.log" >/dev/null
  local P=Qwen3DecoderLayer
  row "Qwen3 8B fp16, 0=4GiB, rest in CPU memory, decode: ferry" -- "${BENCH[@]}" "$C" "$W/qwen3-8b-4gib.json" preload=$P prompt=128 new=16 reps=2
  arow "Qwen3 8B fp16, 0=4GiB, rest in CPU memory, decode: accelerate" -- "${ACC[@]}" "$C" "$W/qwen3-8b-4gib.json" --preload $P --new 6 --reps 1
}

# issue 19's rows: copies beside the compute (the copy stream of Ferry's native library) against copies in order with
# it, blocks prepared ahead, fused attention against separate ops; the link limit comes from the same run
# (summarize.py: 1 / max(streamed bytes per token / torch's pinned copy speed, Ferry's all-resident time per token))
overlap() {
  local C=$W/tinyllama-1.1b
  [ -f "$C/config.json" ] || python3 "$F/make_checkpoint.py" "$C" tinyllama-1.1b | tee -a "$OUT/rows.raw"
  echo '{"": 0}' > "$W/all-gpu0.json"
  map_json "$W/cpu-11-21.json" 22 11 21 cpu
  python3 "$F/accelerate_decode.py" --h2d $((1 << 30)) | tee -a "$OUT/rows.raw"
  local P=LlamaDecoderLayer N="1.1B fp16, layers 11-21 in CPU memory, decode" R="1.1B fp16, all on gpu0, decode"
  local D=(-cp "$F/lib/*" dev.ferry.examples.bench.DecodeBenchmark)
  row "$R: ferry" -- "${BENCH[@]}" "$C" "$W/all-gpu0.json" preload=$P
  row "$R: ferry without CUDA graphs" -- "${JAVA[@]}" -Dferry.cudaGraphs=off "${D[@]}" "$C" "$W/all-gpu0.json" preload=$P
  row "$R: ferry without fused layers" -- "${JAVA[@]}" -Dferry.fusedLayers=off "${D[@]}" "$C" "$W/all-gpu0.json" preload=$P
  row "$R: ferry separate ops" -- "${JAVA[@]}" -Dferry.fusedLayers=off -Dferry.fusedAttention=off "${D[@]}" "$C" "$W/all-gpu0.json" preload=$P
  row "$N: ferry copy stream, 6 blocks ahead" -- "${BENCH[@]}" "$C" "$W/cpu-11-21.json" preload=$P prefetch=6
  row "$N: ferry copy stream, a wait per tensor, 6 blocks ahead" -- "${JAVA[@]}" -Dferry.asyncCopies=off "${D[@]}" "$C" "$W/cpu-11-21.json" preload=$P prefetch=6
  row "$N: ferry copy stream, 1 block ahead" -- "${BENCH[@]}" "$C" "$W/cpu-11-21.json" preload=$P prefetch=1
  row "$N: ferry copies in order, 6 blocks ahead" -- "${JAVA[@]}" -Dferry.copyStream=off "${D[@]}" "$C" "$W/cpu-11-21.json" preload=$P prefetch=6
  row "$N: ferry copies in order, 1 block ahead" -- "${JAVA[@]}" -Dferry.copyStream=off "${D[@]}" "$C" "$W/cpu-11-21.json" preload=$P prefetch=1
  arow "$R: transformers plain" -- "${ACC[@]}" "$C" plain
}

# batches amortise streamed bytes: the 8B under 0=4GiB at batch 1, 8 and 32, Ferry and Accelerate
batch() {
  local C=$W/llama3-8b
  [ -f "$C/config.json" ] || python3 "$F/make_checkpoint.py" "$C" llama3-8b | tee -a "$OUT/rows.raw"
  [ -f "$W/8b-4gib.json" ] || python3 "$F/accelerate_decode.py" --auto-map "$C" "$W/8b-4gib.json" 0=4GiB | tee -a "$OUT/maps.log" >/dev/null
  local P=LlamaDecoderLayer N="8B fp16, 0=4GiB, rest in CPU memory, decode"
  for b in 1 8 32; do
    row "$N, batch $b: ferry" -- "${BENCH[@]}" "$C" "$W/8b-4gib.json" preload=$P prompt=128 new=16 reps=2 batch=$b
  done
  for b in 1 8 32; do
    arow "$N, batch $b: accelerate" -- "${ACC[@]}" "$C" "$W/8b-4gib.json" --preload $P --new 6 --reps 1 --batch $b
  done
}

# issue 19: int8 weights streamed. Same map for both (planned by Accelerate at fp16 sizes): the layers in CPU memory
# stream int8 bytes plus a scale per output channel, about half of fp16's; the resident ones hold int8 too
int8() {
  local C=$W/llama3-8b
  [ -f "$C/config.json" ] || python3 "$H/gpu/make_checkpoint.py" "$C" llama3-8b | tee -a "$OUT/rows.raw"
  [ -f "$W/8b-4gib.json" ] || python3 "$H/gpu/accelerate_decode.py" --auto-map "$C" "$W/8b-4gib.json" 0=4GiB | tee -a "$OUT/maps.log" >/dev/null
  local P=LlamaDecoderLayer N="8B int8, 0=4GiB, rest in CPU memory, decode"
  local D=(-cp "$F/lib/*" dev.ferry.examples.bench.DecodeBenchmark)
  row "$N: ferry_fp16" -- "${BENCH[@]}" "$C" "$W/8b-4gib.json" preload=$P prompt=128 new=16 reps=2
  row "$N: ferry" -- "${BENCH[@]}" "$C" "$W/8b-4gib.json" preload=$P prompt=128 new=16 reps=2 quantize=int8
  # what int8 is for: Ferry's own plan at int8 sizes keeps about twice the layers on the GPU under the same budget
  row "8B int8, 0=4GiB planned at int8 sizes, rest in CPU memory, decode: ferry" -- "${BENCH[@]}" "$C" \
    "auto:0=4GiB,cpu=100GiB" preload=$P prompt=128 new=16 reps=2 quantize=int8
  # 2026-12-03: at one block ahead int8 streamed at 0.87 of the link, fp16 at 0.95 (int8 blocks are half the size, so
  # a block's fixed costs weigh twice); two blocks ahead for both, then the int8 plan, to see whether depth closes it
  row "$N, 2 blocks ahead: ferry_fp16" -- "${BENCH[@]}" "$C" "$W/8b-4gib.json" preload=$P prompt=128 new=16 reps=2 prefetch=2
  row "$N, 2 blocks ahead: ferry" -- "${BENCH[@]}" "$C" "$W/8b-4gib.json" preload=$P prompt=128 new=16 reps=2 quantize=int8 prefetch=2
  row "8B int8, 0=4GiB planned at int8 sizes, rest in CPU memory, decode, 2 blocks ahead: ferry" -- "${BENCH[@]}" "$C" \
    "auto:0=4GiB,cpu=100GiB" preload=$P prompt=128 new=16 reps=2 quantize=int8 prefetch=2
  # int8 layers dequantized inside the fused step (-Dferry.fusedInt8=on, off by default until this has run)
  if [ "${INT8_FUSED:-1}" != 0 ]; then
    row "$N, 2 blocks ahead, fused int8 steps: ferry" -- "${JAVA[@]}" -Dferry.fusedInt8=on "${D[@]}" "$C" "$W/8b-4gib.json" \
      preload=$P prompt=128 new=16 reps=2 quantize=int8 prefetch=2
    row "8B int8, 0=4GiB planned at int8 sizes, rest in CPU memory, decode, 2 blocks ahead, fused int8 steps: ferry" -- \
      "${JAVA[@]}" -Dferry.fusedInt8=on "${D[@]}" "$C" "auto:0=4GiB,cpu=100GiB" preload=$P prompt=128 new=16 reps=2 \
      quantize=int8 prefetch=2
  fi
  if [ "${INT8_ACCELERATE:-1}" != 0 ]; then
    arow "$N: accelerate" -- "${ACC[@]}" "$C" "$W/8b-4gib.json" --preload $P --new 4 --reps 1
  fi
}

# issue 19's int8 goal, the fair way round: fp16 and int8 each under Ferry's own plan for 0=4GiB, which gives the GPU
# to layers before the embedding (an offloaded embedding streams the rows it looks up, 8 KiB a token, not 1 GB)
int8own() {
  local C=$W/llama3-8b
  [ -f "$C/config.json" ] || python3 "$H/gpu/make_checkpoint.py" "$C" llama3-8b | tee -a "$OUT/rows.raw"
  [ -f "$W/8b-4gib.json" ] || python3 "$H/gpu/accelerate_decode.py" --auto-map "$C" "$W/8b-4gib.json" 0=4GiB | tee -a "$OUT/maps.log" >/dev/null
  local P=LlamaDecoderLayer A="auto:0=4GiB,cpu=100GiB"
  local N="8B int8, 0=4GiB, each planned by Ferry at its own sizes, rest in CPU memory, decode"
  for k in 2 1; do
    row "$N, $k blocks ahead: ferry_fp16" -- "${BENCH[@]}" "$C" "$A" preload=$P prompt=128 new=16 reps=2 prefetch=$k
    row "$N, $k blocks ahead: ferry" -- "${BENCH[@]}" "$C" "$A" preload=$P prompt=128 new=16 reps=2 quantize=int8 prefetch=$k
  done
  row "8B fp16, 0=4GiB on Accelerate's map, rest in CPU memory, decode, 2 blocks ahead: ferry" -- "${BENCH[@]}" "$C" \
    "$W/8b-4gib.json" preload=$P prompt=128 new=16 reps=2 prefetch=2
}

serve() {
  local C=$W/tinyllama-1.1b
  [ -f "$C/config.json" ] || python3 "$F/make_checkpoint.py" "$C" tinyllama-1.1b | tee -a "$OUT/rows.raw"
  echo '{"": 0}' > "$W/all-gpu0.json"
  ROW_TIMEOUT=540 row "1.1B fp16, all on gpu0, ferry serve, 64 streaming clients, 60 s" -- "${JAVA[@]}" -cp "$F/lib/*" \
    dev.ferry.examples.bench.ServeLoadBenchmark model="$C" map="$W/all-gpu0.json" clients=64 seconds=60 new=64 \
    minLen=32 maxLen=256
}

# where ferry serve spends its time on the GPU: a short batched run with info logging and thread dumps, then stopped
servediag() {
  local C=$W/tinyllama-1.1b M=${SERVE_MODES:-batched}
  [ -f "$C/config.json" ] || python3 "$F/make_checkpoint.py" "$C" tinyllama-1.1b | tee -a "$OUT/rows.raw"
  echo '{"": 0}' > "$W/all-gpu0.json"
  "${JAVA[@]}" -Dorg.slf4j.simpleLogger.defaultLogLevel=info -Dorg.slf4j.simpleLogger.showDateTime=true \
    -cp "$F/lib/*" dev.ferry.examples.bench.ServeLoadBenchmark model="$C" map="$W/all-gpu0.json" clients=64 \
    seconds=${SERVE_SECONDS:-20} new=64 minLen=32 maxLen=256 modes=$M name=servediag > "$OUT/servediag-java.log" 2>&1 &
  local p=$! n=0
  # until every mode printed its result line (then stop it), with a thread dump every 40 s
  for i in $(seq 1 60); do
    sleep 5; kill -0 $p 2>/dev/null || break
    [ "$(grep -c '^{' "$OUT/servediag-java.log")" -ge "$(echo "$M" | tr ',' '\n' | wc -l)" ] && break
    n=$((n + 5)); if [ $((n % 40)) -eq 0 ]; then stamp "thread dump"; kill -3 $p; fi
  done
  kill $p 2>/dev/null; wait $p 2>/dev/null
  grep '^servediag\|^{' "$OUT/servediag-java.log" | tee -a "$OUT/rows.raw"
}

moeckpt() {
  local C=$W/qwen3-moe-14b
  [ -f "$C/config.json" ] || python3 "$F/make_checkpoint.py" "$C" qwen3-moe-14b | tee -a "$OUT/rows.raw"
  python3 "$F/accelerate_decode.py" --experts-map "$C" "$W/moe-experts-cpu.json" cpu | tee -a "$OUT/maps.log"
}

moe() {
  local C=$W/qwen3-moe-14b
  [ -f "$W/moe-experts-cpu.json" ] || moeckpt
  local N="MoE 13.7 GB fp16 (Qwen3-MoE shape, 10 layers x 128 experts, top-8), 0=4GiB, experts in CPU memory, decode"
  ROW_TIMEOUT=240 row "$N: ferry preload" -- "${BENCH[@]}" "$C" "$W/moe-experts-cpu.json" preload=Qwen3MoeDecoderLayer prompt=128 new=16 reps=2
  ROW_TIMEOUT=300 arow "$N: accelerate" -- "${ACC[@]}" "$C" "$W/moe-experts-cpu.json" --new 4 --reps 1
}

# where the resident decode's forward thread spends its time (issue 19 item 3): the 1.1B all on gpu0 under a Java
# Flight Recording, with CUDA graphs and without, each summarised by JfrSummary (frames the main thread's samples
# stopped in, Ferry methods on its stacks); the recordings themselves are deleted (too large to bring back)
profile() {
  local C=$W/tinyllama-1.1b P=LlamaDecoderLayer
  [ -f "$C/config.json" ] || python3 "$F/make_checkpoint.py" "$C" tinyllama-1.1b | tee -a "$OUT/rows.raw"
  echo '{"": 0}' > "$W/all-gpu0.json"
  for g in on off; do
    local J="$W/decode-graphs-$g.jfr"
    row "1.1B fp16, all on gpu0, decode under JFR, CUDA graphs $g: ferry" -- "${JAVA[@]}" \
      -XX:StartFlightRecording=filename="$J",settings=profile -Dferry.cudaGraphs=$g \
      -cp "$F/lib/*" dev.ferry.examples.bench.DecodeBenchmark "$C" "$W/all-gpu0.json" preload=$P
    "${JAVA[@]}" -cp "$F/lib/*" dev.ferry.examples.bench.JfrSummary "$J" thread=main top=25
    rm -f "$J"
  done
}

# where a MoE decode spends its time: a short run with info logging and two thread dumps (SIGQUIT), then stopped
moediag() {
  local C=$W/qwen3-moe-14b
  [ -f "$W/moe-experts-cpu.json" ] || moeckpt
  "${JAVA[@]}" -Dorg.slf4j.simpleLogger.defaultLogLevel=info -Dorg.slf4j.simpleLogger.showDateTime=true \
    -cp "$F/lib/*" dev.ferry.examples.bench.DecodeBenchmark "$C" "$W/moe-experts-cpu.json" \
    preload=Qwen3MoeDecoderLayer prompt=8 new=4 reps=1 name=moediag > "$OUT/moediag-java.log" 2>&1 &
  local p=$!
  for t in 45 45 45; do
    sleep $t; kill -0 $p 2>/dev/null || break
    stamp "thread dump"; kill -3 $p; nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  done
  kill $p 2>/dev/null; wait $p 2>/dev/null
  grep -v "^\s*$" "$OUT/moediag-java.log" | grep -v "^\s*- \|^\s*at java\.\|jdk.internal" | tail -150
}

for s in $STEPS; do
  stamp "step $s"
  case $s in
    setup) setup 2>&1 | tee "$OUT/setup.log" ;;
    tests) tests 2>&1 | tee "$OUT/tests.log" | tail -60 ;;
    small) small 2>&1 | tee "$OUT/small.log" | grep -v "^===" ;;
    big) big 2>&1 | tee "$OUT/big.log" | grep -v "^===" ;;
    moediag) moediag 2>&1 | tee "$OUT/moediag.log" ;;
    profile) profile 2>&1 | tee "$OUT/profile.log" | grep -v "^===" ;;
    servediag) servediag 2>&1 | tee "$OUT/servediag.log" | tail -5 ;;
    serve) serve 2>&1 | tee "$OUT/serve.log" | grep -v "^===" ;;
    batch) batch 2>&1 | tee "$OUT/batch.log" | grep -v "^===" ;;
    overlap) overlap 2>&1 | tee "$OUT/overlap.log" | grep -v "^===" ;;
    dense) dense 2>&1 | tee "$OUT/dense.log" | grep -v "^===" ;;
    int8) int8 2>&1 | tee "$OUT/int8.log" | grep -v "^===" ;;
    int8own) int8own 2>&1 | tee "$OUT/int8own.log" | grep -v "^===" ;;
    moeckpt) moeckpt 2>&1 | tee "$OUT/moeckpt.log" | grep -v "^===" ;;
    moe) moe 2>&1 | tee "$OUT/moe.log" | grep -v "^===" ;;
    *) echo "unknown step $s" ;;
  esac
done
FERRY_WORK="$W" python3 "$F/summarize.py" "$OUT" 2>&1 | tail -40
stamp "done"
