#!/bin/bash
# Builds DJL's PyTorch JNI library (libdjl_torch.so) from DJL's own v0.36.0 source against a libtorch that DJL does
# not ship (for instance the CUDA 13 libtorch inside a pip-installed torch 2.11), with no change to DJL's source.
#
#   gpu/build-djl-jni.sh DJL_NATIVE_SRC TORCH_DIR [JAVA_HOME]
#
# DJL_NATIVE_SRC  a folder holding DJL's engines/pytorch/pytorch-native/{CMakeLists.txt,src/main/native},
#                 api/src/main/native and the JNI header engines/pytorch/pytorch-native/build/include/
#                 ai_djl_pytorch_jni_PyTorchLibrary.h (gpu/pack.sh makes this folder from a DJL checkout; the header
#                 comes from `javac -h` on PyTorchLibrary.java against api-0.36.0.jar)
# TORCH_DIR       libtorch's root: a libtorch download, or torch's package folder (python3 -c "import torch, os;
#                 print(os.path.dirname(torch.__file__))"); it must hold lib/ and share/cmake/Torch
# JAVA_HOME       a JDK, or a JRE with the JDK's include/ folder copied in (default: $JAVA_HOME)
#
# The library goes to TORCH_DIR/lib. Then run Ferry with (see README, "On a CUDA machine"):
#   PYTORCH_LIBRARY_PATH=TORCH_DIR/lib PYTORCH_VERSION=<torch version, e.g. 2.11.0> PYTORCH_FLAVOR=cu130
#   LD_LIBRARY_PATH=TORCH_DIR/lib:<CUDA runtime lib folder>  and no pytorch-native-* jar on the class path.
# Needs CMake, Ninja (or make), a C++17 compiler and, for CUDA, the CUDA toolkit libtorch was built with.
set -euo pipefail
SRC=$(cd "${1:?DJL native source folder}" && pwd)
TORCH=$(cd "${2:?libtorch folder}" && pwd)
export JAVA_HOME=${3:-${JAVA_HOME:?JAVA_HOME or a third argument}}
[ -f "$JAVA_HOME/include/jni.h" ] || { echo "no $JAVA_HOME/include/jni.h: copy a JDK's include/ folder there" >&2; exit 2; }
N=$SRC/engines/pytorch/pytorch-native
[ -f "$N/build/include/ai_djl_pytorch_jni_PyTorchLibrary.h" ] || { echo "no JNI header in $N/build/include" >&2; exit 2; }
CUDA=0
if ls "$TORCH"/lib/libtorch_cuda.so >/dev/null 2>&1; then CUDA=1; fi
GEN=$(command -v ninja >/dev/null && echo Ninja || echo "Unix Makefiles")
B=$N/build/cmake
mkdir -p "$B"
cmake -S "$N" -B "$B" -G "$GEN" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$TORCH/share/cmake" \
  -DUSE_CUDA=$CUDA -DJAVA_HOME="$JAVA_HOME" >"$B/configure.log" 2>&1 || { tail -30 "$B/configure.log"; exit 3; }
cmake --build "$B" -j"$(nproc)" >"$B/build.log" 2>&1 || { tail -30 "$B/build.log"; exit 4; }
cp "$B/libdjl_torch.so" "$TORCH/lib/"
echo "built $TORCH/lib/libdjl_torch.so (CUDA: $CUDA)"
