"""Writes Ferry's family fixtures with transformers (run where transformers 5.17 / torch 2.11 are installed).

Usage: python3 make_fixtures.py OUT_DIR [family ...]

Each fixture is a tiny model of one transformers family, randomly initialised (initializer_range 0.2) and then given
random norm weights and biases, saved with save_pretrained (safetensors, float32). For each family the script tries
seeds until the top-1 margin of every prompt position and every greedy step is at least MIN_MARGIN (and, for
mixtures of experts, until the router's k-th and (k+1)-th logits are at least MIN_ROUTER_GAP apart for every token),
so that a 1e-4 tolerance cannot flip a token or a routing decision, and until no greedy token is an EOS id.

Each folder gets: config.json, generation_config.json, model.safetensors, module_tree.json (named_modules order:
name, class, own params and buffers), golden.json (input_ids, logits of every prompt position, greedy_new_tokens from
generate(do_sample=False) with the KV cache, min margins). tiny-qwen3 also gets a ChatML byte-level BPE tokenizer with
a chat template and chat_golden.json (apply_chat_template text and ids). tiny-bert is a BERT encoder exported to ONNX
(dynamo, opset 18) with golden mean-pooled embeddings.
"""
import json, math, os, sys, traceback

import torch
import transformers
from transformers import AutoModelForCausalLM, GenerationConfig

MIN_MARGIN = 0.02
MIN_ROUTER_GAP = 0.01
PROMPT = [1, 17, 42, 99, 3, 250, 7, 128]
NEW = 8
COMMON = dict(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4,
              num_key_value_heads=2, head_dim=16, max_position_embeddings=128, initializer_range=0.2,
              bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False)


def rope(theta=10000.0, **kw):
    return dict(rope_type=kw.pop("rope_type", "default"), rope_theta=theta, **kw)


def first_ok(*makers):
    """The first config form this transformers accepts (per-layer-type rope parameters are newer than the flat ones)."""
    def make():
        errors = []
        for m in makers:
            try:
                return m()
            except Exception as e:
                errors.append(repr(e))
        raise RuntimeError("; ".join(errors))
    return make


def families():
    C = transformers
    return {
        "tiny-qwen3": lambda: C.Qwen3Config(**COMMON, rms_norm_eps=1e-6, rope_parameters=rope(1000000.0)),
        "tiny-gemma2": lambda: C.Gemma2Config(**COMMON, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                                              query_pre_attn_scalar=24, sliding_window=4,
                                              attn_logit_softcapping=3.0, final_logit_softcapping=5.0,
                                              rope_parameters=rope(10000.0)),
        "tiny-gemma3": first_ok(lambda: C.Gemma3TextConfig(**COMMON, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                                                  query_pre_attn_scalar=24, sliding_window=4,
                                                  layer_types=["sliding_attention", "sliding_attention",
                                                               "sliding_attention", "full_attention"],
                                                  rope_parameters={
                                                      "sliding_attention": rope(10000.0),
                                                      "full_attention": rope(1000000.0, rope_type="linear",
                                                                             factor=2.0)}),
            lambda: C.Gemma3TextConfig(**COMMON, rms_norm_eps=1e-6, hidden_activation="gelu_pytorch_tanh",
                                       query_pre_attn_scalar=24, sliding_window=4,
                                       layer_types=["sliding_attention", "sliding_attention", "sliding_attention",
                                                    "full_attention"],
                                       rope_theta=1000000.0, rope_local_base_freq=10000.0,
                                       rope_scaling={"rope_type": "linear", "factor": 2.0})),
        "tiny-phi3": lambda: C.Phi3Config(**COMMON, rms_norm_eps=1e-5, rope_parameters=rope(10000.0)),
        "tiny-phi3-longrope": first_ok(lambda: C.Phi3Config(
            **{**COMMON, "max_position_embeddings": 128}, rms_norm_eps=1e-5, partial_rotary_factor=0.5,
            original_max_position_embeddings=12,
            rope_parameters=rope(10000.0, rope_type="longrope",
                                 short_factor=[1.0, 1.3, 1.9, 2.6], long_factor=[1.5, 3.0, 7.0, 12.0],
                                 original_max_position_embeddings=12)),
            lambda: C.Phi3Config(**COMMON, rms_norm_eps=1e-5, original_max_position_embeddings=12,
                                 rope_scaling={"type": "longrope", "short_factor": [1.0, 1.1, 1.3, 1.6, 1.9, 2.2, 2.6, 3.0],
                                               "long_factor": [1.5, 2.0, 3.0, 4.5, 7.0, 9.0, 12.0, 16.0]})),
        "tiny-mixtral": lambda: C.MixtralConfig(**{**COMMON, "intermediate_size": 96}, rms_norm_eps=1e-5,
                                                num_local_experts=4, num_experts_per_tok=2, router_jitter_noise=0.0,
                                                rope_parameters=rope(1000000.0)),
        "tiny-qwen3-moe": lambda: C.Qwen3MoeConfig(**COMMON, rms_norm_eps=1e-6, moe_intermediate_size=32,
                                                   num_experts=8, num_experts_per_tok=2, norm_topk_prob=True,
                                                   decoder_sparse_step=1, mlp_only_layers=[3],
                                                   rope_parameters=rope(1000000.0)),
        "tiny-mistral-sliding": lambda: C.MistralConfig(**COMMON, rms_norm_eps=1e-5, sliding_window=4,
                                                        rope_parameters=rope(10000.0)),
        "tiny-qwen2-sliding": lambda: C.Qwen2Config(**COMMON, rms_norm_eps=1e-6, use_sliding_window=True,
                                                    sliding_window=4, max_window_layers=2,
                                                    rope_parameters=rope(10000.0)),
    }


def randomise(model, g):
    """Norm weights and biases are random too, so a family that adds 1 to a norm weight or drops a bias shows."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if "norm" in name.lower() and leaf == "weight":
                p.copy_(torch.randn(p.shape, generator=g) * 0.3 + (0.0 if "gemma" in type(model).__name__.lower()
                                                                   else 1.0))
            elif leaf == "bias":
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def router_gaps(model, ids, k):
    gaps = []
    hooks = []

    def grab(mod, inp, out):
        x = inp[0].reshape(-1, inp[0].shape[-1]).float()
        logits = x @ mod.weight.float().t()
        top = torch.sort(logits, dim=-1, descending=True).values
        gaps.append((top[:, k - 1] - top[:, k]).min().item())

    for name, mod in model.named_modules():
        if name.endswith("mlp.gate") and hasattr(mod, "weight"):
            hooks.append(mod.register_forward_hook(grab))
    try:
        with torch.no_grad():
            model(torch.tensor([ids]))
    finally:
        for h in hooks:
            h.remove()
    return min(gaps) if gaps else None


def margins(logits):
    top = torch.topk(logits, 2, dim=-1).values
    return (top[..., 0] - top[..., 1]).min().item()


def module_tree(model):
    rows = []
    for name, mod in model.named_modules():
        rows.append({"name": name, "class": type(mod).__name__,
                     "params": {n: {"shape": list(p.shape), "dtype": str(p.dtype).replace("torch.", "")}
                                for n, p in mod.named_parameters(recurse=False)},
                     "buffers": {n: {"shape": list(b.shape), "dtype": str(b.dtype).replace("torch.", "")}
                                 for n, b in mod.named_buffers(recurse=False)}})
    return rows


def greedy(model, ids, eos_ids):
    gc = GenerationConfig(do_sample=False, max_new_tokens=NEW, min_new_tokens=0, eos_token_id=None,
                          pad_token_id=0, bos_token_id=1)
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), generation_config=gc, return_dict_in_generate=True,
                             output_logits=True)
    new = out.sequences[0, len(ids):].tolist()
    step_margin = min(margins(l[0]) for l in out.logits)
    return new, step_margin


def build(name, make_config, out, tokenizer=None, prompt=PROMPT, max_seeds=60):
    for seed in range(max_seeds):
        torch.manual_seed(seed)
        config = make_config()
        if tokenizer is not None:
            config.vocab_size = len(tokenizer)
            config.eos_token_id = [tokenizer.convert_tokens_to_ids("<|im_end|>"),
                                   tokenizer.convert_tokens_to_ids("<|endoftext|>")]
            config.pad_token_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
            config.bos_token_id = None
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager", dtype=torch.float32).eval()
        g = torch.Generator().manual_seed(seed)
        randomise(model, g)
        with torch.no_grad():
            logits = model(torch.tensor([prompt])).logits[0]
        pm = margins(logits)
        eos = config.eos_token_id if isinstance(config.eos_token_id, list) else [config.eos_token_id]
        new, gm = greedy(model, prompt, eos)
        k = getattr(config, "num_experts_per_tok", None)
        rg = router_gaps(model, prompt + new, k) if k else None
        ok = len(new) == NEW and pm >= MIN_MARGIN and gm >= MIN_MARGIN and not (set(new) & set(eos)) and (rg is None or rg >= MIN_ROUTER_GAP)
        print(f"{name} seed {seed}: prompt margin {pm:.4f} gen margin {gm:.4f} router gap {rg} new {new} ok {ok}",
              flush=True)
        if ok:
            break
    else:
        raise RuntimeError(f"{name}: no seed gave margins >= {MIN_MARGIN}")
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    model.generation_config.eos_token_id = config.eos_token_id
    model.save_pretrained(d)
    if tokenizer is not None:
        tokenizer.save_pretrained(d)
    with open(os.path.join(d, "module_tree.json"), "w") as f:
        json.dump(module_tree(model), f, indent=0)
    golden = {"seed": seed, "min_top1_margin_prompt": pm, "min_top1_margin_generation": gm,
              "input_ids": prompt, "logits_shape": list(logits.shape),
              "logits": [round(v, 6) for v in logits.reshape(-1).tolist()], "greedy_new_tokens": new,
              "transformers_version": transformers.__version__, "torch_version": torch.__version__,
              "attn_implementation": "eager"}
    if rg is not None:
        golden["min_router_gap"] = rg
    if name == "tiny-phi3-longrope":
        # a prompt longer than original_max_position_embeddings: the long factors apply from the first position
        long_prompt = [(7 * i + 3) % 250 + 3 for i in range(20)]
        with torch.no_grad():
            ll = model(torch.tensor([long_prompt])).logits[0]
        lnew, lgm = greedy(model, long_prompt, [])
        golden["long_prompt"] = {"input_ids": long_prompt, "logits_shape": list(ll.shape),
                                 "logits": [round(v, 6) for v in ll.reshape(-1).tolist()],
                                 "greedy_new_tokens": lnew, "min_top1_margin_prompt": margins(ll),
                                 "min_top1_margin_generation": lgm}
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(golden, f)
    return model


CHATML_TEMPLATE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if message.role not in ['system', 'user', 'assistant'] %}
        {{- raise_exception('Unknown role: ' + message.role) }}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant") %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content | trim + '<|im_end|>' + '\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

CORPUS = [
    "Hello, who are you? I am a small model that answers questions about the weather.",
    "The quick brown fox jumps over the lazy dog. 2+2=4, and 3*3=9.",
    "Grüße aus Köln! Ça va? Mañana. 日本語のテキスト。 Emoji: 😀🚀",
    "You are a helpful assistant. Write short answers. The weather in Paris is sunny.",
    "system user assistant tools function name description parameters city string",
] * 20

CONVERSATIONS = [
    {"name": "system_and_user", "messages": [{"role": "system", "content": "You are terse."},
                                             {"role": "user", "content": "Hello, who are you?"}],
     "add_generation_prompt": True},
    {"name": "default_system", "messages": [{"role": "user", "content": "Write 2+2."}],
     "add_generation_prompt": True},
    {"name": "multi_turn", "messages": [{"role": "user", "content": "Hi!"},
                                        {"role": "assistant", "content": "  Hello. How can I help?  "},
                                        {"role": "user", "content": "The weather in Paris?"}],
     "add_generation_prompt": True},
    {"name": "multi_turn_no_generation_prompt", "messages": [{"role": "user", "content": "Hi!"},
                                                             {"role": "assistant", "content": "Hello."}],
     "add_generation_prompt": False},
    {"name": "non_ascii", "messages": [{"role": "user", "content": "Grüße aus Köln — 日本語 😀"}],
     "add_generation_prompt": True},
    {"name": "tools", "messages": [{"role": "user", "content": "Weather in Paris?"}],
     "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                                 "parameters": {"type": "object",
                                                                "properties": {"city": {"type": "string"}},
                                                                "required": ["city"]}}}],
     "add_generation_prompt": True},
    {"name": "unknown_role", "messages": [{"role": "tool", "content": "42"}], "add_generation_prompt": True},
]


def chat_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    from transformers import PreTrainedTokenizerFast
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=384, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHATML_TEMPLATE
    return fast


def chat_golden(d, tokenizer, model):
    rows = []
    for conv in CONVERSATIONS:
        row = dict(conv)
        kw = {"add_generation_prompt": conv["add_generation_prompt"]}
        if "tools" in conv:
            kw["tools"] = conv["tools"]
        try:
            row["text"] = tokenizer.apply_chat_template(conv["messages"], tokenize=False, **kw)
            ids = tokenizer.apply_chat_template(conv["messages"], tokenize=True, **kw)
            if isinstance(ids, dict) or hasattr(ids, "keys"):
                ids = ids["input_ids"]
            row["ids"] = list(ids)
        except Exception as e:  # the template's raise_exception
            row["error"] = str(e)
        rows.append(row)
    first = rows[0]["ids"]
    new, gm = greedy(model, first, [])
    rows[0]["greedy_new_tokens"] = new
    rows[0]["min_top1_margin_generation"] = gm
    rows[0]["greedy_text"] = tokenizer.decode(new)
    enc = {s: tokenizer.encode(s, add_special_tokens=False) for s in
           ["Grüße aus Köln — 日本語 😀", "Hello, who are you?", "<|im_start|>user\nHi<|im_end|>"]}
    with open(os.path.join(d, "chat_golden.json"), "w") as f:
        json.dump({"conversations": rows, "encodings": enc,
                   "eos_token_ids": model.generation_config.eos_token_id,
                   "transformers_version": transformers.__version__}, f, ensure_ascii=False, indent=1)


def tiny_bert(out):
    from transformers import BertConfig, BertModel
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=256, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=64, initializer_range=0.2)
    model = BertModel(cfg, add_pooling_layer=False).eval()
    randomise(model, torch.Generator().manual_seed(0))
    d = os.path.join(out, "tiny-bert")
    os.makedirs(d, exist_ok=True)
    model.save_pretrained(d)
    ids = torch.tensor([[1, 17, 42, 99, 3, 250, 7, 128], [5, 6, 7, 0, 0, 0, 0, 0]])
    mask = torch.tensor([[1] * 8, [1, 1, 1, 0, 0, 0, 0, 0]])
    types = torch.zeros_like(ids)
    batch = torch.export.Dim("batch", min=1, max=64)
    seq = torch.export.Dim("seq", min=2, max=64)
    torch.onnx.export(model, (ids, mask, types), os.path.join(d, "model.onnx"), dynamo=True, opset_version=18,
                      input_names=["input_ids", "attention_mask", "token_type_ids"],
                      output_names=["last_hidden_state"],
                      dynamic_shapes=({0: batch, 1: seq}, {0: batch, 1: seq}, {0: batch, 1: seq}),
                      external_data=False)
    with torch.no_grad():
        h = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    m = mask.unsqueeze(-1).float()
    pooled = (h * m).sum(1) / m.sum(1)
    golden = {"input_ids": ids.tolist(), "attention_mask": mask.tolist(),
              "mean_pooled": [[round(v, 6) for v in r] for r in pooled.tolist()]}
    try:
        from onnxruntime.quantization import quantize_dynamic, QuantType
        quantize_dynamic(os.path.join(d, "model.onnx"), os.path.join(d, "model.int8.onnx"),
                         weight_type=QuantType.QInt8)
        import onnxruntime as ort, numpy as np
        for name in ["model.onnx", "model.int8.onnx"]:
            s = ort.InferenceSession(os.path.join(d, name), providers=["CPUExecutionProvider"])
            o = s.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy(),
                             "token_type_ids": types.numpy()})[0]
            p = (o * m.numpy()).sum(1) / m.numpy().sum(1)
            golden["ort_mean_pooled_" + name.replace(".onnx", "").replace(".", "_")] = \
                [[round(float(v), 6) for v in r] for r in p]
    except Exception:
        traceback.print_exc()
    with open(os.path.join(d, "golden.json"), "w") as f:
        json.dump(golden, f)


def main(out, only):
    os.makedirs(out, exist_ok=True)
    print("transformers", transformers.__version__, "torch", torch.__version__, flush=True)
    fams = families()
    for name, make in fams.items():
        if only and name not in only:
            continue
        try:
            if name == "tiny-qwen3":
                tok = chat_tokenizer()
                model = build(name, make, out, tokenizer=tok)
                chat_golden(os.path.join(out, name), tok, model)
            else:
                build(name, make, out)
            print(open(os.path.join(out, name, "config.json")).read(), flush=True)
        except Exception:
            print(f"FAILED {name}", flush=True)
            traceback.print_exc()
    if not only or "tiny-bert" in only:
        try:
            tiny_bert(out)
        except Exception:
            print("FAILED tiny-bert", flush=True)
            traceback.print_exc()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
