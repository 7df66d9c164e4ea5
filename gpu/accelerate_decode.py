"""Accelerate's and plain transformers' side of Ferry's GPU decode benchmark (DecodeBenchmark.java): same checkpoint,
same device map file, same GPU, same prompt, greedy decoding with the KV cache. Prints one JSON line per variant.

Usage:
  python3 accelerate_decode.py MODEL_DIR MAP.json|plain [--preload CLASS] [--prompt 128] [--new 32] [--reps 3]
                               [--offload-folder DIR] [--name TEXT]
  python3 accelerate_decode.py --h2d BYTES     pinned and pageable host-to-device copies by torch
  python3 accelerate_decode.py --auto-map MODEL_DIR OUT.json 0=4GiB [disk-from-layer N]   Accelerate's own map
  python3 accelerate_decode.py --experts-map MODEL_DIR OUT.json cpu|disk   every layer's experts on cpu (or disk),
                               everything else on gpu0; keys never nest, so Accelerate and Ferry read the same file
MAP "plain": the model loaded whole onto cuda:0 with no hooks (transformers' generate as a user runs it).
"""
import argparse, json, statistics, sys, time

import torch
from accelerate import infer_auto_device_map, init_empty_weights, load_checkpoint_and_dispatch
from transformers import AutoConfig, AutoModelForCausalLM
from transformers.generation.streamers import BaseStreamer


class Clock(BaseStreamer):
    """Timestamps every token generate() emits (the first put() is the prompt)."""
    def __init__(self):
        self.times = []

    def put(self, value):
        torch.cuda.synchronize()
        self.times.append(time.perf_counter())

    def end(self):
        pass


def h2d(n):
    out = {}
    for pinned in (True, False):
        src = torch.empty(n, dtype=torch.uint8, pin_memory=pinned)
        src.fill_(1)
        dst = torch.empty(n, dtype=torch.uint8, device="cuda")
        for _ in range(2):
            dst.copy_(src)
        torch.cuda.synchronize()
        t = []
        for _ in range(5):
            t0 = time.perf_counter()
            dst.copy_(src)
            torch.cuda.synchronize()
            t.append(time.perf_counter() - t0)
        out["pinned_GBps" if pinned else "pageable_GBps"] = round(n / statistics.median(t) / 1e9, 2)
    print(json.dumps({"name": "torch host-to-device copy", "bytes": n, **out}), flush=True)


def build(model_dir, map_arg, preload, offload_folder):
    config = AutoConfig.from_pretrained(model_dir)
    if map_arg == "plain":
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float16, device_map={"": 0}).eval()
    with open(map_arg) as f:
        device_map = json.load(f)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float16)
    model = load_checkpoint_and_dispatch(model, model_dir, device_map=device_map, dtype=torch.float16,
                                         offload_folder=offload_folder,
                                         no_split_module_classes=[type(model.model.layers[0]).__name__],
                                         preload_module_classes=[preload] if preload else None)
    return model.eval()


def decode(args):
    t0 = time.perf_counter()
    model = build(args.model, args.map, args.preload, args.offload_folder)
    load_s = time.perf_counter() - t0
    vocab = model.config.vocab_size
    # B rows of the same length, different ids (as DecodeBenchmark's batch=B)
    prompt = torch.tensor([[((i + 31 * b) * 7919 + 13) % vocab for i in range(args.prompt)] for b in range(args.batch)],
                          device="cuda")
    prefill, tps, head = [], [], None
    with torch.inference_mode():
        for r in range(args.reps + 1):
            clock = Clock()
            torch.cuda.synchronize()
            start = time.perf_counter()
            out = model.generate(prompt, max_new_tokens=args.new, min_new_tokens=args.new, do_sample=False,
                                 streamer=clock, pad_token_id=0)
            if r == 0:
                continue
            tokens = clock.times[1:]  # times[0] is the prompt
            prefill.append((tokens[0] - start) * 1e3)
            tps.append(args.batch * (len(tokens) - 1) / (tokens[-1] - tokens[0]))
            head = out[0, args.prompt:args.prompt + 8].tolist()
    print(json.dumps({"name": args.name or args.map, "map": args.map, "preload": args.preload or "", "batch": args.batch,
                      "load_s": round(load_s, 2), "prefill_ms": round(statistics.median(prefill), 2),
                      "decode_tokens_per_s": round(statistics.median(tps), 3), "decode_runs": [round(x, 3) for x in tps],
                      "tokens_head": head}), flush=True)


def auto_map(model_dir, out, budget, disk_from):
    config = AutoConfig.from_pretrained(model_dir)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float16)
    dev, size = budget.split("=")
    m = infer_auto_device_map(model, max_memory={int(dev): size, "cpu": "500GiB"},
                              no_split_module_classes=[type(model.model.layers[0]).__name__], dtype=torch.float16)
    m = {k: v for k, v in m.items()}
    if disk_from is not None:
        for k in list(m):
            if k.startswith("model.layers.") and int(k.split(".")[2]) >= disk_from:
                m[k] = "disk"
    with open(out, "w") as f:
        json.dump(m, f)
    print(json.dumps({"map": out, "entries": m}), flush=True)


def experts_map(model_dir, out, where):
    config = AutoConfig.from_pretrained(model_dir)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float16)
    m = {"model.embed_tokens": 0}
    for i, layer in enumerate(model.model.layers):
        for child, _ in layer.named_children():
            if child == "mlp" and hasattr(layer.mlp, "experts"):
                for part, _ in layer.mlp.named_children():
                    m[f"model.layers.{i}.mlp.{part}"] = where if part == "experts" else 0
            else:
                m[f"model.layers.{i}.{child}"] = 0
    m.update({"model.norm": 0, "model.rotary_emb": 0, "lm_head": 0})
    experts = sum(p.numel() * 2 for n, p in model.named_parameters() if ".mlp.experts." in n)
    with open(out, "w") as f:
        json.dump(m, f)
    print(json.dumps({"map": out, "keys": len(m), "expert_bytes": experts}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--experts-map":
        experts_map(sys.argv[2], sys.argv[3], sys.argv[4])
        sys.exit(0)
    if sys.argv[1] == "--h2d":
        h2d(int(sys.argv[2]))
        sys.exit(0)
    if sys.argv[1] == "--auto-map":
        auto_map(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else None)
        sys.exit(0)
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("map")
    p.add_argument("--preload")
    p.add_argument("--prompt", type=int, default=128)
    p.add_argument("--new", type=int, default=32)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--offload-folder")
    p.add_argument("--batch", type=int, default=1, help="rows decoding together; tokens/s counts every row's")
    p.add_argument("--name")
    decode(p.parse_args())
