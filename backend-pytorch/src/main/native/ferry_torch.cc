// Ferry's native library for the PyTorch backend: the few libtorch calls DJL 0.36 does not expose.
// Built against the machine's libtorch by gpu/build-ferry-native.sh, next to DJL's own JNI library (the same libtorch,
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
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

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

// An optional tensor: handle 0 is "none" (a bias-free projection, a layer without q/k norms).
std::optional<torch::Tensor> OptionalOf(jlong handle) {
  if (handle == 0) {
    return std::nullopt;
  }
  return TensorOf(handle);
}

std::vector<jlong> HandlesOf(JNIEnv* env, jlongArray array, jsize expected) {
  jsize n = env->GetArrayLength(array);
  if (n != expected) {
    throw std::invalid_argument("expected " + std::to_string(expected) + " tensor handles, got " + std::to_string(n));
  }
  std::vector<jlong> out(n);
  env->GetLongArrayRegion(array, 0, n, out.data());
  return out;
}

jlongArray NewHandles(JNIEnv* env, std::initializer_list<torch::Tensor> tensors) {
  std::vector<jlong> out;
  for (const auto& t : tensors) {
    out.push_back(reinterpret_cast<jlong>(new torch::Tensor(t)));
  }
  jlongArray array = env->NewLongArray(static_cast<jsize>(out.size()));
  if (array == nullptr) {  // an OutOfMemoryError is pending in Java: free what nobody will own
    for (jlong h : out) {
      delete reinterpret_cast<torch::Tensor*>(h);
    }
    return nullptr;
  }
  env->SetLongArrayRegion(array, 0, static_cast<jsize>(out.size()), out.data());
  return array;
}

// The ops of Ferry's Java layers, in their order, so that the fused step gives what they give: LlamaRMSNorm in float32
// (x · (mean(x²) + eps)^-½, back to the input type, times the weight), rotate-half rotary, SiLU as x · sigmoid(x).
torch::Tensor RmsNorm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  torch::Tensor h = x.to(torch::kFloat32);
  const std::vector<int64_t> last{-1};
  torch::Tensor normed = h * (h.pow(2).mean(at::IntArrayRef(last), true) + eps).pow(-0.5);
  return weight * normed.to(x.scalar_type());
}

torch::Tensor Rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  int64_t half = x.size(3) / 2;
  torch::Tensor rotated = torch::cat({x.slice(3, half).neg(), x.slice(3, 0, half)}, 3);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

}  // namespace

// Every entry point turns a C++ exception into a Java IllegalStateException: none may unwind into the JVM.
#define FERRY_BEGIN try {
#define FERRY_END(ret)                                        \
  }                                                           \
  catch (const std::exception& e) {                           \
    ThrowJava(env, std::string("libtorch: ") + e.what());     \
    return ret;                                               \
  }                                                           \
  catch (...) {                                               \
    ThrowJava(env, "libtorch: an unknown C++ exception");     \
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

// A copy of a CPU tensor on GPU `device`, queued on the calling thread's current stream without waiting. The caller
// keeps the host memory alive (Ferry: a locked offload buffer) and synchronises the stream before the copy is read.
JNIEXPORT jlong JNICALL Java_dev_ferry_pytorch_TorchNative_toDeviceAsync(JNIEnv* env, jclass, jlong handle,
                                                                         jint device) {
  FERRY_BEGIN
  torch::NoGradGuard no_grad;
  const torch::Tensor& host = TensorOf(handle);
  torch::Tensor out = host.to(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(device)), host.scalar_type(),
                              true, false);
  return reinterpret_cast<jlong>(new torch::Tensor(std::move(out)));
  FERRY_END(0)
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

// The first half of a pre-norm decoder layer's step (Llama, Qwen2/3, Mistral): input norm, q/k/v projections, the
// optional per-head q/k norms, rotary. handles: hidden [b, s, h], input norm, q/k/v weights and biases (0: none),
// q/k norms (0: none), cos and sin [b, s, d]. Returns q [b, heads, s, d], k and v [b, kv, s, d] (for the KV cache).
JNIEXPORT jlongArray JNICALL Java_dev_ferry_pytorch_TorchNative_decoderQkv(JNIEnv* env, jclass, jlongArray jhandles,
                                                                           jint heads, jint kv_heads, jint head_dim,
                                                                           jdouble eps) {
  FERRY_BEGIN
  torch::NoGradGuard no_grad;
  auto hs = HandlesOf(env, jhandles, 12);
  const torch::Tensor& hidden = TensorOf(hs[0]);
  torch::Tensor x = RmsNorm(hidden, TensorOf(hs[1]), eps);
  int64_t b = x.size(0);
  int64_t s = x.size(1);
  auto project = [&](jlong w, jlong bias, int64_t n, jlong norm) {
    torch::Tensor y = at::linear(x, TensorOf(w), OptionalOf(bias)).reshape({b, s, n, head_dim});
    if (norm != 0) {
      y = RmsNorm(y, TensorOf(norm), eps);
    }
    return y.transpose(1, 2);
  };
  torch::Tensor q = Rotary(project(hs[2], hs[3], heads, hs[8]), TensorOf(hs[10]), TensorOf(hs[11]));
  torch::Tensor k = Rotary(project(hs[4], hs[5], kv_heads, hs[9]), TensorOf(hs[10]), TensorOf(hs[11]));
  torch::Tensor v = project(hs[6], hs[7], kv_heads, 0);
  return NewHandles(env, {q, k, v});
  FERRY_END(nullptr)
}

// The second half: fused attention over the cache's keys and values (nothing masked), output projection, residual,
// post-attention norm, gated SiLU MLP, residual. handles: hidden, q, keys, values, o weight and bias, post-attention
// norm, gate/up/down weights and biases (0: none). Returns the layer's output [b, s, h].
JNIEXPORT jlong JNICALL Java_dev_ferry_pytorch_TorchNative_decoderAttentionMlp(JNIEnv* env, jclass,
                                                                               jlongArray jhandles, jdouble scale,
                                                                               jdouble eps) {
  FERRY_BEGIN
  torch::NoGradGuard no_grad;
  auto hs = HandlesOf(env, jhandles, 13);
  const torch::Tensor& hidden = TensorOf(hs[0]);
  const torch::Tensor& q = TensorOf(hs[1]);
  torch::Tensor attn = at::scaled_dot_product_attention(q, TensorOf(hs[2]), TensorOf(hs[3]), std::nullopt, 0.0, false,
                                                        static_cast<double>(scale), true);
  torch::Tensor merged = attn.transpose(1, 2).reshape({q.size(0), q.size(2), q.size(1) * q.size(3)});
  torch::Tensor h1 = hidden + at::linear(merged, TensorOf(hs[4]), OptionalOf(hs[5]));
  torch::Tensor x = RmsNorm(h1, TensorOf(hs[6]), eps);
  torch::Tensor g = at::linear(x, TensorOf(hs[7]), OptionalOf(hs[8]));
  torch::Tensor u = at::linear(x, TensorOf(hs[9]), OptionalOf(hs[10]));
  torch::Tensor out = h1 + at::linear((g * torch::sigmoid(g)) * u, TensorOf(hs[11]), OptionalOf(hs[12]));
  return reinterpret_cast<jlong>(new torch::Tensor(std::move(out)));
  FERRY_END(0)
}

}  // extern "C"
