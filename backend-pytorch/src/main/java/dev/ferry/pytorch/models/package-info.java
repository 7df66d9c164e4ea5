/**
 * Model families: how a Hugging Face {@code config.json} becomes a module tree that mirrors transformers' (module
 * names and class names), so checkpoints load name for name and device maps, no-split and preload lists written for
 * Accelerate work unchanged.
 *
 * <h2>Shared blocks</h2>
 * {@link dev.ferry.pytorch.models.CausalLM} (trunk plus {@code lm_head}, tied or not, optional final soft-capping),
 * {@link dev.ferry.pytorch.models.DecoderTrunk} (cache length, padding mask, position ids and one additive mask per
 * window size, shared by every trunk), and for the rotary families {@link dev.ferry.pytorch.models.DecoderModel},
 * {@link dev.ferry.pytorch.models.DecoderLayer}, {@link dev.ferry.pytorch.models.DecoderAttention} and
 * {@link dev.ferry.pytorch.models.GatedMLP}, configured by a {@link dev.ferry.pytorch.models.DecoderSpec}: norm kind
 * (RMS, RMS with {@code 1 + w}), pre-norm or Gemma's sandwich norms, separate or fused {@code qkv_proj}, q/k norm,
 * score scale, attention and final soft-capping, a sliding window per layer ({@code layer_types}), rotary tables per
 * layer kind ({@link dev.ferry.pytorch.models.RopeConfig}: default, linear, llama3, longrope, partial rotary), MLP
 * kind ({@link dev.ferry.pytorch.models.MlpFactory}: gated, fused {@code gate_up_proj}, or a family's own, such as
 * a mixture of experts), embedding scale. GPT-2 keeps its own blocks (Conv1D, learned positions) over the shared
 * trunk and head.
 *
 * <h2>Adding a family</h2>
 * <ol>
 *   <li>Read transformers' modular file for it ({@code modular_<family>.py}): it states what differs from the family
 *       it derives from. Save a tiny random checkpoint with transformers ({@code testdata/make_fixtures.py}) with its
 *       {@code module_tree.json} and {@code golden.json}.</li>
 *   <li>Declare it as a {@link dev.ferry.pytorch.models.DecoderFamily}: its {@code model_type}, its
 *       {@link dev.ferry.pytorch.models.ClassNames} ({@code ClassNames.of("Qwen3")} plus any exception, such as
 *       {@code Gemma3TextModel}), and its deltas on Llama's reading of a config, e.g. Qwen3:
 *       {@code (c, b) -> qwenWindows(c, b.qkNorm())}. Read fields through
 *       {@link dev.ferry.pytorch.models.FamilyConfig}, whose {@code required} names a field the family needs and the
 *       config lacks. See {@link dev.ferry.pytorch.models.DenseFamilies}.</li>
 *   <li>Only behaviour no block has yet goes into code: a new option of {@code DecoderSpec} and the block that reads
 *       it, or a new {@code MlpFactory}. A rope type or attention variant Ferry does not implement is refused by
 *       name, never approximated.</li>
 *   <li>If its checkpoints name tensors differently from its module tree (older names, per-expert tensors where the
 *       tree fuses them), override {@link dev.ferry.pytorch.models.Family#checkpointView}.</li>
 *   <li>Register it in {@link dev.ferry.pytorch.models.ModelFamilies}, and add the fixture to {@code ModuleTreeTest},
 *       {@code FidelityTest}, {@code DispatchedFidelityTest} and {@code CudaGoldenTest}.</li>
 * </ol>
 */
package dev.ferry.pytorch.models;
