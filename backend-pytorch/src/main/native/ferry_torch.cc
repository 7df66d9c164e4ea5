// Ferry's native library for the PyTorch backend: the few libtorch calls DJL 0.36 does not expose.
// Built against the machine's libtorch by gpu/build-djl-jni.sh, next to DJL's own JNI library (the same libtorch,
// so the torch::Tensor* handles DJL's PtNDArray holds can be read here). Loaded by dev.ferry.pytorch.TorchNative;
// without it Ferry runs as before (copies in order with the compute, attention in separate ops).
#include <jni.h>

#include <torch/torch.h>
#include <torch/version.h>

#ifdef FERRY_WITH_CUDA
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <exception>
#include <string>

namespace {

void ThrowJava(JNIEnv* env, const std::string& message) {
  jclass cls = env->FindClass("java/lang/IllegalStateException");
  if (cls != nullptr) {
    env->ThrowNew(cls, message.c_str());
  }
}

torch::Tensor& TensorOf(jlong handle) {
  return *reinterpret_cast<torch::Tensor*>(handle);
}

}  // namespace

// Every entry point turns a C++ exception into a Java IllegalStateException: none may unwind into the JVM.
#define FERRY_BEGIN try {
#define FERRY_END(ret)                                        \
  }                                                           \
  catch (const std::exception& e) {                           \
    ThrowJava(env, std::string("libtorch: ") + e.what());     \
    return ret;                                               \
  }

extern "C" {

JNIEXPORT jstring JNICALL Java_dev_ferry_pytorch_TorchNative_torchVersion(JNIEnv* env, jclass) {
  return env->NewStringUTF(TORCH_VERSION);
}

JNIEXPORT jboolean JNICALL Java_dev_ferry_pytorch_TorchNative_hasCudaStreams(JNIEnv* env, jclass) {
#ifdef FERRY_WITH_CUDA
  return JNI_TRUE;
#else
  return JNI_FALSE;
#endif
}

// The calling thread's copies and kernels for `device` go, from now on, to a stream of libtorch's pool: created
// non-blocking, so they neither wait for nor hold up the legacy default stream the forward's thread computes on.
JNIEXPORT void JNICALL Java_dev_ferry_pytorch_TorchNative_useSideStream(JNIEnv* env, jclass, jint device) {
  FERRY_BEGIN
#ifdef FERRY_WITH_CUDA
  auto stream = c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(device));
  c10::cuda::setCurrentCUDAStream(stream);
#endif
  FERRY_END()
}

// Returns when everything the calling thread queued on its current stream for `device` has finished.
JNIEXPORT void JNICALL Java_dev_ferry_pytorch_TorchNative_synchronizeCurrentStream(JNIEnv* env, jclass, jint device) {
  FERRY_BEGIN
#ifdef FERRY_WITH_CUDA
  c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).synchronize();
#endif
  FERRY_END()
}

// Marks the tensor's memory as used by the calling thread's current stream: the caching allocator will not hand it
// to another stream (the copy stream that made it) before the work queued here up to its free has run.
JNIEXPORT void JNICALL Java_dev_ferry_pytorch_TorchNative_recordOnCurrentStream(JNIEnv* env, jclass, jlong handle) {
  FERRY_BEGIN
#ifdef FERRY_WITH_CUDA
  torch::Tensor& t = TensorOf(handle);
  if (t.defined() && t.is_cuda()) {
    t.record_stream(c10::cuda::getCurrentCUDAStream(t.device().index()));
  }
#endif
  FERRY_END()
}

// softmax(q kᵀ · scale) v in one call (flash or memory-efficient kernels on a GPU), grouped key/value heads
// broadcast by the kernel instead of repeated: q [b, h, s, d], k and v [b, kv, t, d], h a multiple of kv. No mask:
// Ferry calls it where nothing is hidden (a decode step of an unpadded batch). A new tensor handle, owned by the caller.
JNIEXPORT jlong JNICALL Java_dev_ferry_pytorch_TorchNative_attention(JNIEnv* env, jclass, jlong q, jlong k, jlong v,
                                                                     jdouble scale) {
  FERRY_BEGIN
  torch::NoGradGuard no_grad;
  torch::Tensor out = at::scaled_dot_product_attention(TensorOf(q), TensorOf(k), TensorOf(v), std::nullopt, 0.0,
                                                       false, static_cast<double>(scale), true);
  return reinterpret_cast<jlong>(new torch::Tensor(std::move(out)));
  FERRY_END(0)
}

}  // extern "C"
