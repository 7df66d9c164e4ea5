"""Folds a harness run (OUT_DIR/rows.raw, OUT_DIR/junit/*.xml) into OUT_DIR/gpu-results.json, the shape of
docs/gpu-results.json: {"date", "gpu", "golden_cuda": {"passed", "failed", "skipped"}, "rows": [...], "raw": [...]}.
Rows pair Ferry's and Accelerate's (or plain transformers') variants of one name; higher is better in each."""
import datetime, glob, json, os, subprocess, sys
import xml.etree.ElementTree as ET

out = sys.argv[1]
raw = []
if os.path.exists(os.path.join(out, "rows.raw")):
    for line in open(os.path.join(out, "rows.raw")):
        line = line.strip()
        if line.startswith("{"):
            try:
                raw.append(json.loads(line))
            except ValueError:
                pass
passed = failed = skipped = 0
for f in glob.glob(os.path.join(out, "junit", "*.xml")):
    for case in ET.parse(f).getroot().iter("testcase"):
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
        elif case.find("skipped") is not None:
            skipped += 1
        else:
            passed += 1
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                         text=True).stdout.strip().replace("\n", ", ")
except OSError:
    gpu = "unknown"
# paths inside the harness's work folder are kept relative to it: the summary says what was run, not where
work = os.environ.get("FERRY_WORK", "").rstrip("/")
if work:
    for r in raw:
        for k, v in list(r.items()):
            if isinstance(v, str) and v.startswith(work + "/"):
                r[k] = v[len(work) + 1:]
by = {r["name"]: r for r in raw if "name" in r}
rows = []
for name, r in by.items():
    if not name.endswith(": ferry") and not name.endswith(": ferry preload"):
        continue
    base = name.rsplit(": ", 1)[0]
    suffix = " preload" if name.endswith("preload") else ""
    acc = by.get(base + ": accelerate" + suffix) or by.get(base + ": accelerate preload") or by.get(base + ": accelerate")
    row = {"name": base + (" (preload " + (r.get("preload") or "LlamaDecoderLayer") + ")" if suffix else ""),
           "metric": "tokens/s",
           "ferry": r.get("decode_tokens_per_s"), "accelerate": acc.get("decode_tokens_per_s") if acc else None,
           "ratio": round(r["decode_tokens_per_s"] / acc["decode_tokens_per_s"], 2) if acc and acc.get("decode_tokens_per_s") else None,
           "ferry_prefill_ms": r.get("prefill_ms"), "accelerate_prefill_ms": acc.get("prefill_ms") if acc else None,
           "pinned_fraction": r.get("pinned_fraction"), "streamed_bytes_per_token": r.get("streamed_bytes_per_token")}
    if r.get("routed_expert_bytes_per_token") is not None:
        row["routed_expert_bytes_per_token"] = r["routed_expert_bytes_per_token"]
        row["expert_fetches_per_token"] = r.get("expert_fetches_per_token")
    plain = by.get(base + ": transformers plain")
    if plain:
        row["transformers_plain"] = plain.get("decode_tokens_per_s")
        row["ratio_vs_plain"] = round(r["decode_tokens_per_s"] / plain["decode_tokens_per_s"], 2)
    fp16 = by.get(base + ": ferry_fp16")
    if fp16:  # int8 rows: Ferry fp16 on the same map in the same run
        row["ferry_fp16"] = fp16.get("decode_tokens_per_s")
        row["ratio_vs_fp16"] = round(r["decode_tokens_per_s"] / fp16["decode_tokens_per_s"], 2)
        row["fp16_streamed_bytes_per_token"] = fp16.get("streamed_bytes_per_token")
    nohooks = by.get(base + ": ferry no hooks")
    if nohooks:
        row["ferry_no_hooks"] = nohooks.get("decode_tokens_per_s")
    rows.append(row)
# issue 19's link limit for the offloaded 1.1B rows: 1 / max(streamed bytes per token / torch's pinned copy speed,
# Ferry's all-resident time per token), both measured in the same run
overlap = []
h2d = next((r for r in raw if r.get("name") == "torch host-to-device copy"), None)
resident = by.get("1.1B fp16, all on gpu0, decode: ferry")
for name, r in by.items():
    if (name.startswith("1.1B fp16, layers 11-21 in CPU memory, decode: ferry") and h2d and resident
            and r.get("streamed_bytes_per_token") and r.get("decode_tokens_per_s")):
        copy_s = r["streamed_bytes_per_token"] / (h2d["pinned_GBps"] * 1e9)
        limit = 1 / max(copy_s, 1 / resident["decode_tokens_per_s"])
        overlap.append({"name": name, "metric": "tokens/s", "ferry": r["decode_tokens_per_s"],
                        "link_limit_tokens_per_s": round(limit, 2),
                        "ratio_to_link_limit": round(r["decode_tokens_per_s"] / limit, 3),
                        "streamed_bytes_per_token": r["streamed_bytes_per_token"], "pinned_GBps": h2d["pinned_GBps"],
                        "ferry_all_resident_tokens_per_s": resident["decode_tokens_per_s"]})
plain = by.get("1.1B fp16, all on gpu0, decode: transformers plain")
for name in ("1.1B fp16, all on gpu0, decode: ferry", "1.1B fp16, all on gpu0, decode: ferry without CUDA graphs",
             "1.1B fp16, all on gpu0, decode: ferry without fused layers",
             "1.1B fp16, all on gpu0, decode: ferry separate ops"):
    r = by.get(name)
    if r and plain and plain.get("decode_tokens_per_s"):
        overlap.append({"name": name, "metric": "tokens/s", "ferry": r["decode_tokens_per_s"],
                        "transformers_plain": plain["decode_tokens_per_s"],
                        "ratio_vs_plain": round(r["decode_tokens_per_s"] / plain["decode_tokens_per_s"], 3),
                        "forward_thread_cpu_share": r.get("forward_thread_cpu_share"),
                        "cuda_graph_captures_replays_failures": r.get("cuda_graph_captures_replays_failures")})
# batches: every row's tokens per second against batch 1 of the same tool
for name, r in by.items():
    if ", batch " in name and name.endswith(": ferry") and r.get("batch", 1) > 1:
        base = name.split(", batch ")[0]
        one = by.get(base + ", batch 1: ferry")
        acc = by.get(base + f", batch {r['batch']}: accelerate")
        overlap.append({"name": name, "metric": "tokens/s (all rows)", "ferry": r["decode_tokens_per_s"],
                        "ferry_batch1": one.get("decode_tokens_per_s") if one else None,
                        "ratio_vs_batch1": round(r["decode_tokens_per_s"] / one["decode_tokens_per_s"], 2) if one else None,
                        "accelerate": acc.get("decode_tokens_per_s") if acc else None})
rows.extend(overlap)
summary = {"date": datetime.date.today().isoformat(), "gpu": gpu,
           "reproduce": "DJL_GIT=<a git dir of deepjavalibrary/djl> gpu/pack.sh, then on the GPU machine "
                        "gpu/harness.sh OUT setup tests small big (README: On a CUDA machine); checkpoint and map "
                        "paths are relative to the harness's work folder (FERRY_WORK)",
           "golden_cuda": {"passed": passed, "failed": failed, "skipped": skipped}, "rows": rows, "raw": raw}
json.dump(summary, open(os.path.join(out, "gpu-results.json"), "w"), indent=1)
print(json.dumps({k: v for k, v in summary.items() if k != "raw"}, indent=1))
