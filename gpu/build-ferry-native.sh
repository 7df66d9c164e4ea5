#!/bin/bash
# Builds Ferry's native library for the PyTorch backend (libferry_torch.so: CUDA copy streams and fused attention,
# see dev.ferry.pytorch.TorchNative) against a libtorch, as gpu/build-djl-jni.sh builds DJL's JNI library.
#
#   gpu/build-ferry-native.sh NATIVE_SRC TORCH_DIR [JAVA_HOME]
#
# NATIVE_SRC  backend-pytorch/src/main/native (CMakeLists.txt, ferry_torch.cc)
# TORCH_DIR   libtorch's root, or torch's package folder; it must hold lib/ and share/cmake/Torch
# JAVA_HOME   a JDK, or a JRE with the JDK's include/ folder copied in (default: $JAVA_HOME)
#
# The library goes to TORCH_DIR/lib, where Ferry looks first (PYTORCH_LIBRARY_PATH). Without it Ferry runs as before.
set -euo pipefail
SRC=$(cd "${1:?Ferry native source folder}" && pwd)
TORCH=$(cd "${2:?libtorch folder}" && pwd)
export JAVA_HOME=${3:-${JAVA_HOME:?JAVA_HOME or a third argument}}
[ -f "$JAVA_HOME/include/jni.h" ] || { echo "no $JAVA_HOME/include/jni.h: copy a JDK's include/ folder there" >&2; exit 2; }
CUDA=OFF
if ls "$TORCH"/lib/libtorch_cuda.so >/dev/null 2>&1; then CUDA=ON; fi
GEN=$(command -v ninja >/dev/null && echo Ninja || echo "Unix Makefiles")
B=$(mktemp -d)/build
mkdir -p "$B"
cmake -S "$SRC" -B "$B" -G "$GEN" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH/share/cmake" \
  -DUSE_CUDA=$CUDA -DJAVA_HOME="$JAVA_HOME" >"$B.configure.log" 2>&1 || { tail -30 "$B.configure.log"; exit 3; }
cmake --build "$B" -j"$(nproc)" >"$B.build.log" 2>&1 || { grep -m20 -B2 -A6 "error" "$B.build.log" || tail -40 "$B.build.log"; exit 4; }
cp "$B/libferry_torch.so" "$TORCH/lib/"
echo "built $TORCH/lib/libferry_torch.so (CUDA streams: $CUDA)"
