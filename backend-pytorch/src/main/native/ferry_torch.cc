// Ferry's native library for the PyTorch backend: the few libtorch calls DJL 0.36 does not expose.
// Built against the machine's libtorch by gpu/build-ferry-native.sh, next to DJL's own JNI library (the same libtorch,
// so the torch::Tensor* handles DJL's PtNDArray holds can be read here). Loaded by dev.ferry.pytorch.TorchNative;
// without it Ferry runs as before (copies in order with the compute, attention in separate ops).
#include <jni.h>

#include <torch/torch.h>
#include <torch/version.h>

#ifdef FERRY_WITH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include <atomic>
#include <exception>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
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

// A projection's weight as the Java Linear uses it: an int8 weight times its per-output-channel scale [out, 1], in
// the scale's dtype (dequantized on the device, as Linear does); a weight without scale as it is.
torch::Tensor Dequantized(const torch::Tensor& weight, const torch::Tensor& scale) {
  return scale.defined() ? weight.to(scale.scalar_type()) * scale : weight;
}

torch::Tensor Rotary(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  int64_t half = x.size(3) / 2;
  torch::Tensor rotated = torch::cat({x.slice(3, half).neg(), x.slice(3, 0, half)}, 3);
  return x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1);
}

using Tensors = std::vector<torch::Tensor>;
using Step = std::function<Tensors(const Tensors&)>;

// How often steps were captured, replayed, and given up on (a capture that failed): for tests and benchmarks.
std::atomic<int64_t> g_captures{0};
std::atomic<int64_t> g_replays{0};
std::atomic<int64_t> g_failures{0};

// A layer's decode-step parts as CUDA graphs, one per part and input shape: a replay is one launch where the eager
// part is some twenty. A graph reads its weights where they were at capture, so it is replayed only when the layer's
// weights are at those addresses now (a resident layer's always are; a streamed block's only when the allocator gave
// the same memory again); otherwise the part runs eagerly. Captured the second time a part runs with the same weights
// and shapes, never more than kMaxCaptures times per layer: a streamed layer whose weights move on every step stops
// being captured, and a server's many batch sizes do not each keep a graph. Each graph keeps a memory pool of its own
// (its intermediates: a few MB per layer and batch shape, outside any device-map budget), hence the low bound; one
// pool shared by all graphs of a GPU, their replays ordered, would hold one step's worth. Owned by a Java
// FusedDecoderStep, freed by freeStepGraphs.
struct StepGraphs {
  static constexpr int kMaxCaptures = 6;  // both parts for three batch shapes
  struct Captured {
#ifdef FERRY_WITH_CUDA
    std::unique_ptr<at::cuda::CUDAGraph> graph;
#endif
    Tensors inputs;                    // the graph reads these: a replay first copies the call's inputs into them
    Tensors outputs;                   // and writes these (memory of the graph's own pool)
    std::vector<const void*> weights;  // where the weights were at capture
  };
  std::mutex mutex;
#ifdef FERRY_WITH_CUDA
  // recorded on the stream of the last step that used a graph, after it: a thread stepping the layer on another
  // stream waits for it, so a replay never overwrites inputs or outputs another stream has yet to read
  at::cuda::CUDAEvent last_use;
#endif
  std::map<std::string, Captured> captured;
  std::map<std::string, std::vector<const void*>> last_eager;
  int captures = 0;
};

std::string KeyOf(const char* part, const Tensors& inputs) {
  std::string key(part);
  for (const auto& t : inputs) {
    key += '|' + std::to_string(static_cast<int>(t.scalar_type())) + '@' + std::to_string(t.device().index());
    for (int64_t d : t.sizes()) {
      key += ',' + std::to_string(d);
    }
  }
  return key;
}

std::vector<const void*> WhereOf(const Tensors& weights) {
  std::vector<const void*> out;
  for (const auto& w : weights) {
    out.push_back(w.defined() ? w.data_ptr() : nullptr);
  }
  return out;
}

#ifdef FERRY_WITH_CUDA
// One stream per GPU that only captures: a stream of libtorch's pool may be another thread's current stream (the
// copy stream of a prefetcher), whose work would then land in the graph. Captures take turns on it.
std::mutex g_capture_mutex;

c10::cuda::CUDAStream CaptureStream(c10::DeviceIndex dev) {
  static std::map<c10::DeviceIndex, cudaStream_t> streams;
  auto it = streams.find(dev);
  if (it == streams.end()) {
    c10::cuda::CUDAGuard on_device(dev);
    cudaStream_t s;
    C10_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    it = streams.emplace(dev, s).first;
  }
  return c10::cuda::getStreamFromExternal(it->second, dev);
}

// Captures `step` on a side stream (CUDA graphs cannot be captured on the default stream), after one eager run there
// so that libraries' lazy set-up (cuBLAS workspaces) stays out of the graph, then replays it on `current` for this
// call's result. Thread-local capture mode: other threads' CUDA calls (a prefetcher's copies) go on undisturbed.
const Tensors& Capture(StepGraphs& g, const std::string& key, std::vector<const void*> where, const Tensors& inputs,
                       const Step& step, const c10::cuda::CUDAStream& current) {
  StepGraphs::Captured c;
  c.weights = std::move(where);
  for (const auto& t : inputs) {
    c.inputs.push_back(t.clone());
  }
  std::lock_guard<std::mutex> one_capture_at_a_time(g_capture_mutex);
  c10::cuda::CUDAStream side = CaptureStream(current.device_index());
  at::cuda::CUDAEvent ready;
  ready.record(current);
  ready.block(side);
  c.graph = std::make_unique<at::cuda::CUDAGraph>();
  {
    c10::cuda::CUDAStreamGuard on_side(side);
    step(c.inputs);
    c.graph->capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
    try {
      c.outputs = step(c.inputs);
    } catch (...) {
      try {
        c.graph->capture_end();
      } catch (...) {
      }
      throw;
    }
    c.graph->capture_end();
  }
  at::cuda::CUDAEvent done;
  done.record(side);
  done.block(current);
  c.graph->replay();
  ++g.captures;
  g_captures++;
  StepGraphs::Captured& kept = g.captured[key] = std::move(c);
  return kept.outputs;
}
#endif

// `step` on `inputs` (its weights `weights`), replayed as a CUDA graph where one is captured for it (see StepGraphs).
// A replay's outputs are the graph's own memory, overwritten by its next replay: `copy_out` clones them for a caller
// that keeps them (a layer's output); the others are consumed before the layer's next step (Java holds the layer's
// lock across the step, and last_use orders streams).
Tensors RunStep(StepGraphs* g, const char* part, const Tensors& inputs, const Tensors& weights, bool copy_out,
                const Step& step) {
#ifdef FERRY_WITH_CUDA
  if (g != nullptr && inputs[0].is_cuda()) {
    c10::DeviceIndex dev = inputs[0].device().index();
    c10::cuda::CUDAStream current = c10::cuda::getCurrentCUDAStream(dev);
    std::lock_guard<std::mutex> lock(g->mutex);
    std::string key = KeyOf(part, inputs);
    std::vector<const void*> where = WhereOf(weights);
    const Tensors* out = nullptr;
    auto it = g->captured.find(key);
    if (it != g->captured.end() && it->second.weights == where) {
      g->last_use.block(current);
      for (size_t i = 0; i < inputs.size(); i++) {
        it->second.inputs[i].copy_(inputs[i], true);
      }
      it->second.graph->replay();
      g_replays++;
      out = &it->second.outputs;
    } else {
      if (it != g->captured.end()) {
        g->last_use.block(current);  // its last replay's outputs may still be read on another stream
        g->captured.erase(it);       // the weights moved: captured again once they stay put
      }
      auto seen = g->last_eager.find(key);
      if (seen != g->last_eager.end() && seen->second == where && g->captures < StepGraphs::kMaxCaptures) {
        try {
          g->last_use.block(current);
          out = &Capture(*g, key, where, inputs, step, current);
        } catch (const std::exception&) {
          g->captures = StepGraphs::kMaxCaptures;  // this layer runs eagerly from now on
          g_failures++;
        }
      }
      if (out == nullptr) {
        g->last_eager[key] = where;
      }
    }
    if (out != nullptr) {
      Tensors result = *out;
      if (copy_out) {
        for (auto& t : result) {
          t = t.clone();
        }
      }
      g->last_use.record(current);
      return result;
    }
  }
#endif
  return step(inputs);
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
// q/k norms (0: none), cos and sin [b, s, d], q/k/v int8 scales (0: not int8). Returns q [b, heads, s, d], k and v
// [b, kv, s, d] (for the KV cache).
// graphs: the layer's StepGraphs (0: run eagerly).
JNIEXPORT jlongArray JNICALL Java_dev_ferry_pytorch_TorchNative_decoderQkv(JNIEnv* env, jclass, jlong graphs,
                                                                           jlongArray jhandles, jint heads,
                                                                           jint kv_heads, jint head_dim, jdouble eps) {
  FERRY_BEGIN
  torch::NoGradGuard no_grad;
  auto hs = HandlesOf(env, jhandles, 15);
  auto tensor = [&](jlong h) { return h == 0 ? torch::Tensor() : TensorOf(h); };
  Tensors weights;  // 0 input norm, 1-6 q/k/v weights and biases, 7-8 q/k norms, 9-11 q/k/v int8 scales
  for (int i = 1; i <= 9; i++) {
    weights.push_back(tensor(hs[i]));
  }
  for (int i = 12; i <= 14; i++) {
    weights.push_back(tensor(hs[i]));
  }
  auto step = [&weights, heads, kv_heads, head_dim, eps](const Tensors& in) -> Tensors {
    const torch::Tensor& cos = in[1];
    const torch::Tensor& sin = in[2];
    torch::Tensor x = RmsNorm(in[0], weights[0], eps);
    int64_t b = x.size(0);
    int64_t s = x.size(1);
    auto optional = [](const torch::Tensor& t) { return t.defined() ? std::optional<torch::Tensor>(t) : std::nullopt; };
    auto project = [&](int w, int64_t n, int norm) {
      torch::Tensor weight = Dequantized(weights[w], weights[9 + (w - 1) / 2]);
      torch::Tensor y = at::linear(x, weight, optional(weights[w + 1])).reshape({b, s, n, head_dim});
      if (norm >= 0 && weights[norm].defined()) {
        y = RmsNorm(y, weights[norm], eps);
      }
      return y.transpose(1, 2);
    };
    torch::Tensor q = Rotary(project(1, heads, 7), cos, sin);
    torch::Tensor k = Rotary(project(3, kv_heads, 8), cos, sin);
    torch::Tensor v = project(5, kv_heads, -1);
    return {q, k, v};
  };
  Tensors out = RunStep(reinterpret_cast<StepGraphs*>(graphs), "qkv", {TensorOf(hs[0]), TensorOf(hs[10]),
                        TensorOf(hs[11])}, weights, false, step);
  return NewHandles(env, {out[0], out[1], out[2]});
  FERRY_END(nullptr)
}

// The second half: fused attention over the cache's keys and values (eager, as its length grows with every step),
// then output projection, residual, post-attention norm, gated SiLU MLP, residual (a graph where one is captured).
// handles: hidden, q, keys, values, o weight and bias, post-attention norm, gate/up/down weights and biases, the
// additive attention mask [b, 1, s, t] (0: none), o/gate/up/down int8 scales (0: not int8). Returns the layer's
// output [b, s, h], the caller's own.
JNIEXPORT jlong JNICALL Java_dev_ferry_pytorch_TorchNative_decoderAttentionMlp(JNIEnv* env, jclass, jlong graphs,
                                                                               jlongArray jhandles, jdouble scale,
                                                                               jdouble eps) {
  FERRY_BEGIN
  torch::NoGradGuard no_grad;
  auto hs = HandlesOf(env, jhandles, 18);
  auto tensor = [&](jlong h) { return h == 0 ? torch::Tensor() : TensorOf(h); };
  const torch::Tensor& q = TensorOf(hs[1]);
  // Ferry's additive mask (0 or float32's lowest) in q's dtype: what the Java path adds to the scores before softmax
  std::optional<torch::Tensor> mask;
  if (hs[13] != 0) {
    mask = TensorOf(hs[13]).to(q.scalar_type());
  }
  torch::Tensor attn = at::scaled_dot_product_attention(q, TensorOf(hs[2]), TensorOf(hs[3]), mask, 0.0, false,
                                                        static_cast<double>(scale), true);
  Tensors weights;  // 0-1 o weight and bias, 2 norm, 3-8 gate/up/down weights and biases, 9-12 o/gate/up/down scales
  for (int i = 4; i <= 12; i++) {
    weights.push_back(tensor(hs[i]));
  }
  for (int i = 14; i <= 17; i++) {
    weights.push_back(tensor(hs[i]));
  }
  auto step = [&weights, eps](const Tensors& in) -> Tensors {
    const torch::Tensor& hidden = in[0];
    const torch::Tensor& a = in[1];
    auto optional = [](const torch::Tensor& t) { return t.defined() ? std::optional<torch::Tensor>(t) : std::nullopt; };
    torch::Tensor merged = a.transpose(1, 2).reshape({a.size(0), a.size(2), a.size(1) * a.size(3)});
    torch::Tensor h1 = hidden + at::linear(merged, Dequantized(weights[0], weights[9]), optional(weights[1]));
    torch::Tensor x = RmsNorm(h1, weights[2], eps);
    torch::Tensor g = at::linear(x, Dequantized(weights[3], weights[10]), optional(weights[4]));
    torch::Tensor u = at::linear(x, Dequantized(weights[5], weights[11]), optional(weights[6]));
    return {h1 + at::linear((g * torch::sigmoid(g)) * u, Dequantized(weights[7], weights[12]), optional(weights[8]))};
  };
  Tensors out = RunStep(reinterpret_cast<StepGraphs*>(graphs), "mlp", {TensorOf(hs[0]), attn}, weights, true, step);
  return reinterpret_cast<jlong>(new torch::Tensor(std::move(out[0])));
  FERRY_END(0)
}

// A layer's CUDA graphs (see StepGraphs): created by its FusedDecoderStep, freed when the model's backend closes.
JNIEXPORT jlong JNICALL Java_dev_ferry_pytorch_TorchNative_newStepGraphsHandle(JNIEnv* env, jclass) {
  FERRY_BEGIN
  return reinterpret_cast<jlong>(new StepGraphs());
  FERRY_END(0)
}

JNIEXPORT void JNICALL Java_dev_ferry_pytorch_TorchNative_freeStepGraphs(JNIEnv* env, jclass, jlong graphs) {
  FERRY_BEGIN
  delete reinterpret_cast<StepGraphs*>(graphs);
  FERRY_END()
}

// {captures, replays, failed captures} over the process, for tests and benchmarks.
JNIEXPORT jlongArray JNICALL Java_dev_ferry_pytorch_TorchNative_stepGraphCounts0(JNIEnv* env, jclass) {
  jlong counts[3] = {g_captures.load(), g_replays.load(), g_failures.load()};
  jlongArray array = env->NewLongArray(3);
  if (array != nullptr) {
    env->SetLongArrayRegion(array, 0, 3, counts);
  }
  return array;
}

}  // extern "C"
