"""Accelerate's side of Ferry's offload benchmark (benchmarks/src/main/java/dev/ferry/examples/bench/Benchmarks.java), same model, same map.

Reads the model folder Ferry's benchmark wrote (config.json + model.safetensors, `Benchmarks offload keep=true`)
and times, in this one process, with the numbers measured against baselines of the same process:
  cpu:  all resident on the CPU vs layers N/2..N-1 offloaded to disk (Accelerate's offload folder, numpy
        memmaps), executed on the CPU: steady-state forward of `seq` tokens. The model runs in --model-dtype
        (default float32) whatever the checkpoint stores: a bfloat16 checkpoint into a float32 model is offloaded
        as stored (bf16, saved as int16) and converted to float32 by set_module_tensor_to_device on every forward,
        as Ferry does with `Benchmarks offload dtype=bfloat16`; --model-dtype bfloat16 runs the model in bf16;
  gpu:  all on cuda:0 vs layers N/2..N-1 offloaded to CPU memory (executed on cuda:0), float32 and float16;
  h2d:  pinned and pageable host-to-device copies of the streamed bytes; plain sequential file read.
Usage: python3 accelerate_bench.py MODEL_DIR [--threads N] [--seq 16] [--rounds 5] [--model-dtype float32|bfloat16]
                                  [--skip-gpu] [--skip-cpu]
"""
import argparse, gc, json, os, shutil, statistics, sys, tempfile, time

import torch
import accelerate
import transformers
from accelerate import dispatch_model, init_empty_weights, load_checkpoint_and_dispatch
from transformers import AutoConfig, AutoModelForCausalLM


def block_map(n_layers, layer_dev, rest):
    m = {"model.embed_tokens": rest}
    for i in range(n_layers):
        m[f"model.layers.{i}"] = layer_dev(i)
    m.update({"model.norm": rest, "model.rotary_emb": rest, "lm_head": rest})
    return m


def build(model_dir, device_map, dtype, offload_dir=None):
    config = AutoConfig.from_pretrained(model_dir)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.tie_weights()
    model = load_checkpoint_and_dispatch(model, os.path.join(model_dir, "model.safetensors"), device_map=device_map,
                                         offload_folder=offload_dir, dtype=dtype,
                                         no_split_module_classes=["LlamaDecoderLayer"],
                                         preload_module_classes=["LlamaDecoderLayer"])
    model.eval()
    return model


def timed(fn, reps, sync):
    out = []
    for _ in range(reps):
        if sync: torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if sync: torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return out


def interleaved(variants, rounds, reps, sync):
    """variants: name -> callable; returns name -> list of per-round medians (round 0 is a warm-up, dropped)."""
    res = {k: [] for k in variants}
    for r in range(rounds + 1):
        for k, fn in variants.items():
            t = timed(fn, reps, sync)
            if r > 0:
                res[k].append(statistics.median(t))
    return res


def table(res, base, streamed):
    for k, v in res.items():
        line = f"  {k:46s} median {statistics.median(v)*1e3:9.3f} ms  min {min(v)*1e3:9.3f} ms"
        if k != base:
            ratios = sorted(a / b for a, b in zip(v, res[base]))
            extra = statistics.median(v) - statistics.median(res[base])
            line += f"  ratio {statistics.median(ratios):.3f}x [{ratios[0]:.3f}..{ratios[-1]:.3f}]"
            if streamed and extra > 0:
                line += f"  {streamed/extra/1e9:.2f} GB/s over the extra time"
        print(line, flush=True)


def offloaded_tensors(model_dir, n_layers):
    """(elements, bytes as stored, stored dtype) of layers n/2..n-1, read from the safetensors header."""
    with open(os.path.join(model_dir, "model.safetensors"), "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    elements, nbytes, dtypes = 0, 0, set()
    for k, v in header.items():
        parts = k.split(".")
        if k.startswith("model.layers.") and int(parts[2]) >= n_layers // 2:
            n = 1
            for d in v["shape"]:
                n *= d
            elements += n
            nbytes += v["data_offsets"][1] - v["data_offsets"][0]
            dtypes.add(v["dtype"])
    return elements, nbytes, "/".join(sorted(dtypes))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--seq", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--model-dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                    help="dtype the model runs in on the CPU (weights converted to it), whatever the checkpoint stores")
    ap.add_argument("--skip-gpu", action="store_true")
    ap.add_argument("--skip-cpu", action="store_true")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = json.load(open(os.path.join(a.model_dir, "config.json")))
    n = cfg["num_hidden_layers"]
    vocab = cfg["vocab_size"]
    ids = torch.tensor([[(i * 7919 + 13) % vocab for i in range(a.seq)]])
    elements, streamed, stored = offloaded_tensors(a.model_dir, n)
    model_dtype = getattr(torch, a.model_dtype)
    print(f"# accelerate {accelerate.__version__}, transformers {transformers.__version__}, torch {torch.__version__},"
          f" {torch.get_num_threads()} threads, {a.seq} tokens, layers {n//2}..{n-1} offloaded,"
          f" {streamed/1e6:.0f} MB streamed per forward (checkpoint stores {stored};"
          f" CPU model runs in {a.model_dtype})", flush=True)

    if not a.skip_cpu:
      try:
        off = tempfile.mkdtemp(prefix="acc-offload-")
        resident = build(a.model_dir, block_map(n, lambda i: "cpu", "cpu"), model_dtype)
        disk = build(a.model_dir, block_map(n, lambda i: "disk" if i >= n // 2 else "cpu", "cpu"), model_dtype, off)
        try:
            idx = json.load(open(os.path.join(off, "index.json")))
            print(f"cpu: offload folder holds {sorted({v['dtype'] for v in idx.values()})} for {len(idx)} tensors;"
                  f" model parameters {sorted({str(p.dtype) for p in resident.parameters()})}", flush=True)
        except Exception as e:
            print(f"cpu: could not read the offload index: {e!r}", flush=True)
        with torch.inference_mode():
            ref = resident(ids).logits
            diff = (disk(ids).logits - ref).abs().max().item()
            print(f"cpu: max |logit(disk offload) - logit(resident)| = {diff:.3g}", flush=True)
            res = interleaved({"accelerate cpu, all resident": lambda: resident(ids),
                               "accelerate cpu, half on disk": lambda: disk(ids)}, a.rounds, a.reps, False)
        print(f"accelerate, CPU execution ({stored} checkpoint, {a.model_dtype} model), warm page cache (steady state):")
        table(res, "accelerate cpu, all resident", streamed)
        del resident, disk
        gc.collect()
        shutil.rmtree(off, ignore_errors=True)
      except Exception:
        import traceback; traceback.print_exc()

    if not a.skip_gpu and torch.cuda.is_available():
      try:
        for dtype in (torch.float32, torch.float16):
            nbytes = elements * (4 if dtype == torch.float32 else 2)  # held on the CPU in the model's dtype
            gpu = build(a.model_dir, block_map(n, lambda i: 0, 0), dtype)
            cpu_off = build(a.model_dir, block_map(n, lambda i: "cpu" if i >= n // 2 else 0, 0), dtype)
            g = ids.to(0)
            with torch.inference_mode():
                res = interleaved({f"accelerate gpu {dtype}, all on cuda:0": lambda: gpu(g),
                                   f"accelerate gpu {dtype}, half offloaded to cpu": lambda: cpu_off(ids)},
                                  a.rounds, a.reps, True)
            print(f"accelerate, execution on {torch.cuda.get_device_name(0)}, {dtype}:")
            table(res, f"accelerate gpu {dtype}, all on cuda:0", nbytes)
            del gpu, cpu_off
            gc.collect()
            torch.cuda.empty_cache()
        # H2D of the streamed bytes (float32): pinned and pageable, one copy
        host = torch.empty(elements, dtype=torch.float32)
        pinned = host.pin_memory()
        dev = torch.empty_like(host, device=0)
        for name, src in (("pinned", pinned), ("pageable", host)):
            t = timed(lambda: dev.copy_(src, non_blocking=False), 10, True)
            print(f"  H2D {name}: {elements*4/statistics.median(t)/1e9:.2f} GB/s ({statistics.median(t)*1e3:.1f} ms "
                  f"for {elements*4/1e6:.0f} MB)", flush=True)
      except Exception:
        import traceback; traceback.print_exc()


if __name__ == "__main__":
    main()
