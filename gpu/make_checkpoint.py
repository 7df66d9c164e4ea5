"""Writes a random fp16 checkpoint (config.json, sharded safetensors, index) for the GPU benchmarks.

Usage: python3 make_checkpoint.py OUT_DIR tinyllama-1.1b|llama3-8b|qwen3-moe-14b
Weights are drawn on the GPU (fast), scaled so activations stay finite over all layers, and saved from the CPU.
qwen3-moe-14b: Qwen3-30B-A3B's layer shape (hidden 2048, 128 experts of MLP 768, top-8, q/k norm) with 10 layers:
13.7 GB in fp16, 12.1 GB of it experts. Saved from transformers 5's module tree, so its experts are in the fused
layout (mlp.experts.gate_up_proj [128, 1536, 2048], mlp.experts.down_proj [128, 2048, 768]).
"""
import json, os, sys, time

import torch
from safetensors.torch import save_file
from accelerate import init_empty_weights
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen3Config, Qwen3MoeConfig

SHAPES = {
    "tinyllama-1.1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
                           num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048, rope_theta=10000.0),
    "llama3-8b": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0),
    "qwen3-8b": dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                     num_key_value_heads=8, head_dim=128, vocab_size=151936, max_position_embeddings=8192,
                     rope_theta=1000000.0),
    "qwen3-moe-14b": dict(hidden_size=2048, intermediate_size=6144, moe_intermediate_size=768, num_hidden_layers=10,
                          num_attention_heads=32, num_key_value_heads=4, head_dim=128, num_experts=128,
                          num_experts_per_tok=8, norm_topk_prob=True, decoder_sparse_step=1, mlp_only_layers=[],
                          vocab_size=151936, max_position_embeddings=4096, rope_theta=1000000.0),
}


def main(out, shape):
    t0 = time.time()
    os.makedirs(out, exist_ok=True)
    kind = Qwen3MoeConfig if shape.startswith("qwen3-moe") else Qwen3Config if shape.startswith("qwen3") else LlamaConfig
    config = kind(**SHAPES[shape], rms_norm_eps=1e-5, tie_word_embeddings=False, torch_dtype="float16",
                  bos_token_id=1, eos_token_id=2)
    config.save_pretrained(out)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float16)
    g = torch.Generator(device="cuda").manual_seed(0)
    shard, shard_bytes, index, n = {}, 0, {}, 0
    names = list(model.state_dict().items())

    def flush():
        nonlocal shard, shard_bytes, n
        if shard:
            n += 1
            name = f"model-{n:05d}.safetensors"
            save_file(shard, os.path.join(out, name), metadata={"format": "pt"})
            for k in shard:
                index[k] = name
            shard, shard_bytes = {}, 0

    for k, p in names:
        if k.endswith("norm.weight") or "layernorm" in k:
            t = torch.ones(p.shape, dtype=torch.float16, device="cuda")
        else:
            t = torch.randn(p.shape, generator=g, dtype=torch.float16, device="cuda") * 0.02
        shard[k] = t.cpu()
        shard_bytes += t.numel() * 2
        if shard_bytes > 4 << 30:
            flush()
    flush()
    total = sum(p.numel() * 2 for _, p in names)
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": index}, f)
    print(json.dumps({"checkpoint": shape, "dir": out, "bytes": total, "shards": n, "seconds": round(time.time() - t0, 1)}),
          flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
