#!/bin/bash
# Packs what benchmarks/scripts/gpu_run.sh needs to compare Ferry with Accelerate on another machine that has
# Python with torch, transformers and accelerate but no Java (docs/benchmarks.md, "CPU execution on a 16-core
# machine"). Writes two folders, each small enough for a transfer limited to 64 MiB; copy both to the machine (or
# merge them into one where there is no limit) and run `gpu_run.sh unpack` from the first, then `gpu_run.sh run`
# from the second:
#   OUT/a: gpu_run.sh, accelerate_bench.py, pagecache_probe.py, jre-lib.tar.xz (a jlink JRE and the benchmark jars,
#          without libtorch, ONNX Runtime or JMH), torch.tar.xz.part-aa
#   OUT/b: the same scripts, torch.tar.xz.part-ab, torch.tar.xz.sha256
# torch.tar.xz holds DJL's libtorch 2.7.1 CPU libraries (from the pytorch-native-cpu jar, symbols stripped) as torch/.
#   benchmarks/scripts/pack_cpu_run.sh [OUT]      (default OUT: ship/cpu-run, git-ignored)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-ship/cpu-run}
JDK=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
mvn -q -B -pl benchmarks -am package -DskipTests
rm -rf "$OUT" && mkdir -p "$OUT/a" "$OUT/b"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$JDK/bin/jlink" --add-modules java.base,java.logging,java.management,java.naming,java.xml,java.desktop,java.compiler,jdk.jfr,jdk.unsupported,jdk.zipfs \
  --strip-debug --no-man-pages --no-header-files --compress=2 --output "$T/jre"
mkdir -p "$T/lib"
cp benchmarks/target/ferry-benchmarks.jar "$T/lib/"
for j in benchmarks/target/lib/*.jar; do
  case $(basename "$j") in
    pytorch-native-*|onnxruntime-*|jmh-*|jopt-simple-*|commons-math3-*) ;;
    *) cp "$j" "$T/lib/" ;;
  esac
done
tar cJf "$OUT/a/jre-lib.tar.xz" -C "$T" jre lib
mkdir -p "$T/torch"
unzip -q -j "$(ls benchmarks/target/lib/pytorch-native-cpu-*.jar)" 'pytorch/cpu/linux-x86_64/*' -d "$T/torch"
strip --strip-unneeded "$T"/torch/*.so* 2>/dev/null || true
tar cf - -C "$T" torch | xz -9 -T2 > "$T/torch.tar.xz"
head -c 16000000 "$T/torch.tar.xz" > "$OUT/a/torch.tar.xz.part-aa"
tail -c +16000001 "$T/torch.tar.xz" > "$OUT/b/torch.tar.xz.part-ab"
(cd "$T" && sha256sum torch.tar.xz) > "$OUT/b/torch.tar.xz.sha256"
for d in a b; do cp benchmarks/scripts/gpu_run.sh benchmarks/scripts/accelerate_bench.py benchmarks/scripts/pagecache_probe.py "$OUT/$d/"; done
ls -la "$OUT/a" "$OUT/b"
