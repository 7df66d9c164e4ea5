#!/bin/bash
# Packs what gpu/harness.sh needs on a GPU machine that has Python, torch, a compiler and CMake but no Java and no
# network, into ship/gpu.tar.xz (git-ignored; under the device tool's 64 MiB per call):
#   a jlink JRE (with the JDK's include/ for the JNI build), Ferry's jars without the CPU libtorch, ONNX Runtime and
#   JMH, the test classes and JUnit's console launcher, DJL's native sources at v0.36.0 with
#   the JNI header, and the scripts of gpu/.
#   DJL_GIT=<a git dir of deepjavalibrary/djl holding tag v0.36.0> gpu/pack.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DJL_GIT=${DJL_GIT:?a git dir of deepjavalibrary/djl with tag v0.36.0}
rm -rf benchmarks/target/lib  # stale jars of earlier builds would travel too
mvn -q -B package -DskipTests
mvn -q -B test-compile
S=ship/gpu
rm -rf "$S" ship/gpu.tar.xz
mkdir -p "$S/lib" "$S/tools" "$S/test-classes" "$S/djl"
# what the PyTorch backend, ferry-serve (and core's chat templates: Jinjava) and the benchmark mains (module
# benchmarks) need, and nothing else (not the CPU libtorch, ONNX Runtime, JMH or Spark)
for j in benchmarks/target/lib/*.jar; do
  case $(basename "$j") in
    api-*|pytorch-engine-*|pytorch-jni-*|jna-*|tokenizers-*|gson-*|guice-*|jakarta.inject-*|aopalliance-*|guava-*|\
    failureaccess-*|jackson-core-*|jackson-databind-*|jackson-annotations-*|slf4j-api-*|slf4j-simple-*|picocli-*|progressbar-*|jline-*|commons-compress-*|\
    commons-io-*|commons-codec-*|ferry-core-*|ferry-tokenizers-*|ferry-backend-pytorch-*|ferry-serve-*|\
    jinjava-*|javassist-*|re2j-*|commons-lang3-*|commons-net-*|java-ipv6-*|big-math-*|algebra-*|hubspot-style-*|\
    immutable-collection-encodings-*|immutables-exceptions-*|encode-*|derive4j-annotation-*|jackson-dataformat-yaml-*|\
    snakeyaml-*|jackson-datatype-jdk8-*) cp "$j" "$S/lib/" ;;
  esac
done
cp benchmarks/target/ferry-benchmarks.jar "$S/lib/"
# DJL looks for libdjl_torch.so in the libtorch folder first, where the harness builds it: the jar's prebuilt ones for
# other libtorch releases and platforms are dead weight in one 64 MiB call
zip -q -d "$S"/lib/pytorch-jni-*.jar 'jnilib/*' >/dev/null 2>&1 || true
# natives of other platforms are dead weight in one 64 MiB call
for j in "$S"/lib/jna-*.jar "$S"/lib/tokenizers-*.jar; do
  zip -q -d "$j" 'com/sun/jna/aix-*' 'com/sun/jna/darwin*' 'com/sun/jna/*bsd*' 'com/sun/jna/sunos*' \
    'com/sun/jna/win32*' 'com/sun/jna/linux-[a-wy]*' 'com/sun/jna/linux-x86/*' 'native/lib/osx*' 'native/lib/win*' \
    'native/lib/linux-aarch64/*' >/dev/null 2>&1 || true
done
mvn -q -B dependency:copy -Dartifact=org.junit.platform:junit-platform-console-standalone:1.14.4 -DoutputDirectory="$S/tools"
mvn -q -B dependency:copy -Dartifact=org.assertj:assertj-core:3.27.7 -DoutputDirectory="$S/tools"
cp -r core/target/test-classes "$S/test-classes/core"
cp -r backend-pytorch/target/test-classes "$S/test-classes/pytorch"
# a JRE for Ferry, with include/ so that DJL's JNI can be built against it
JDK=${JAVA_HOME:-$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")}
# jdk.httpserver and java.net.http: ferry serve and its load benchmark's clients
"$JDK/bin/jlink" --add-modules java.base,java.compiler,java.desktop,java.sql,java.logging,java.naming,java.management,jdk.management,jdk.unsupported,jdk.zipfs,jdk.httpserver,java.net.http,jdk.jfr \
  --strip-debug --no-header-files --no-man-pages --compress=2 --output "$S/jre"
cp -r "$JDK/include" "$S/jre/include"
# DJL's native sources (23 KB) and the JNI header javac derives from PyTorchLibrary.java
git --git-dir "$DJL_GIT" archive v0.36.0 engines/pytorch/pytorch-native/CMakeLists.txt \
  engines/pytorch/pytorch-native/src/main/native api/src/main/native | tar x -C "$S/djl"
T=$(mktemp -d)
git --git-dir "$DJL_GIT" show v0.36.0:engines/pytorch/pytorch-engine/src/main/java/ai/djl/pytorch/jni/PyTorchLibrary.java \
  > "$T/PyTorchLibrary.java"
"$JDK/bin/javac" -h "$S/djl/engines/pytorch/pytorch-native/build/include" -d "$T/classes" \
  -cp "$(ls benchmarks/target/lib/api-0.36.0.jar)" "$T/PyTorchLibrary.java"
rm -rf "$T"
cp -r backend-pytorch/src/main/native "$S/native"
cp gpu/*.sh gpu/*.py "$S/"
tar cJf ship/gpu.tar.xz -C ship gpu
ls -la ship/gpu.tar.xz
