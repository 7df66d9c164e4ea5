#!/usr/bin/env python3
"""Writes tiny-llama/tokenizer.json: a byte-level BPE tokenizer in Hugging Face tokenizers' JSON form whose
256 tokens are the 256 bytes (token id = byte value, spelled with GPT-2's byte-to-unicode alphabet) and which has
no merges, so every text encodes (UTF-8 bytes) and decodes back unchanged, and every id of the fixture's
vocabulary (vocab_size 256) decodes. No special tokens: ids 1 and 2 (the config's bos/eos) are bytes 0x01/0x02.
Standard library only; run from testdata/: python3 make_tokenizer.py"""
import json


def bytes_to_unicode():
    # GPT-2's table: printable bytes stand for themselves, the others are shifted above U+0100
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def main():
    table = bytes_to_unicode()
    vocab = {table[b]: b for b in range(256)}
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [],
        "normalizer": None,
        "pre_tokenizer": byte_level,
        "post_processor": None,
        "decoder": byte_level,
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": [],
        },
    }
    with open("tiny-llama/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(tokenizer, f, ensure_ascii=False, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
