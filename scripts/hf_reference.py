#!/usr/bin/env python3
"""An independent GPT-2 forward pass in NumPy, for checking `gptlab export --format hf-gpt2` and
the import of any HF GPT-2 folder (with or without the `transformer.` prefix).

Written from the GPT-2 definition (Hugging Face transformers' modeling_gpt2.py), not from
gptlab's code: token + position embeddings; per block
    x = x + c_proj(attn(ln_1(x)))      attn: causal softmax(q k^T / sqrt(head_dim)) v per head,
                                        q, k, v = split(c_attn(x)) in that order
    x = x + mlp.c_proj(gelu_new(mlp.c_fc(ln_2(x))))
then ln_f and the LM head tied to wte. Conv1D computes x @ W + b with W stored [in, out].
LayerNorm: (x - mean) / sqrt(var + eps) * w + b, biased variance. Computed in float64.

Reads the folder only (config.json, model.safetensors, generation_config.json); the
safetensors file is parsed by hand: 8-byte little-endian header length, JSON header, raw data.

    python3 scripts/hf_reference.py DIR --tokens 2,10,11 [--generate 20] [--json]

Needs only NumPy.
"""

import argparse
import json
import math
import os
import struct
import sys

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    tensors = {}
    for name, info in header.items():
        # The causal-mask buffers older transformers saved (float, byte or bool): not weights.
        if name == "__metadata__" or name.endswith((".attn.bias", ".attn.masked_bias")):
            continue
        dtype = DTYPES.get(info["dtype"])
        if dtype is None:
            sys.exit(f"{path}: tensor {name} has unsupported dtype {info['dtype']}")
        start, end = info["data_offsets"]
        arr = np.frombuffer(body[start:end], dtype=np.dtype(dtype).newbyteorder("<"))
        tensors[name] = arr.reshape(info["shape"]).astype(np.float64)
    return tensors


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


class Gpt2:
    def __init__(self, folder):
        with open(os.path.join(folder, "config.json")) as f:
            self.cfg = json.load(f)
        cfg = self.cfg
        if cfg.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            sys.exit(f"unsupported activation {cfg['activation_function']}")
        self.n_layer, self.n_head = cfg["n_layer"], cfg["n_head"]
        self.n_positions = cfg["n_positions"]
        self.eps = cfg.get("layer_norm_epsilon", 1e-5)
        t = read_safetensors(os.path.join(folder, "model.safetensors"))
        # Checkpoints saved from GPT2Model omit the `transformer.` prefix.
        self.t = {k[len("transformer.") :] if k.startswith("transformer.") else k: v for k, v in t.items()}
        gen_path = os.path.join(folder, "generation_config.json")
        self.gen = json.load(open(gen_path)) if os.path.exists(gen_path) else {}

    def block(self, x, i):
        t, p = self.t, f"h.{i}."
        s, m = x.shape
        hd = m // self.n_head
        h = layer_norm(x, t[p + "ln_1.weight"], t[p + "ln_1.bias"], self.eps)
        qkv = h @ t[p + "attn.c_attn.weight"] + t[p + "attn.c_attn.bias"]
        q, k, v = np.split(qkv, 3, axis=-1)
        heads = lambda a: a.reshape(s, self.n_head, hd).transpose(1, 0, 2)  # (head, seq, hd)
        q, k, v = heads(q), heads(k), heads(v)
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
        future = np.triu(np.ones((s, s), dtype=bool), 1)
        scores = np.where(future, -np.inf, scores)
        scores = scores - scores.max(-1, keepdims=True)
        w = np.exp(scores)
        w = w / w.sum(-1, keepdims=True)
        a = (w @ v).transpose(1, 0, 2).reshape(s, m)
        x = x + a @ t[p + "attn.c_proj.weight"] + t[p + "attn.c_proj.bias"]
        h = layer_norm(x, t[p + "ln_2.weight"], t[p + "ln_2.bias"], self.eps)
        h = gelu_new(h @ t[p + "mlp.c_fc.weight"] + t[p + "mlp.c_fc.bias"])
        return x + h @ t[p + "mlp.c_proj.weight"] + t[p + "mlp.c_proj.bias"]

    def logits(self, ids):
        """Next-token logits (seq, vocab_size) for one sequence of ids."""
        t = self.t
        if len(ids) > self.n_positions:
            sys.exit(f"{len(ids)} tokens exceed n_positions {self.n_positions}")
        x = t["wte.weight"][ids] + t["wpe.weight"][: len(ids)]
        for i in range(self.n_layer):
            x = self.block(x, i)
        x = layer_norm(x, t["ln_f.weight"], t["ln_f.bias"], self.eps)
        return x @ t["wte.weight"].T  # tied LM head

    def greedy(self, ids, max_new_tokens):
        """Greedy continuation as transformers' generate() with generation_config.json would
        give: suppressed ids never chosen, stopping after an eos id (which is kept)."""
        eos = self.gen.get("eos_token_id", self.cfg.get("eos_token_id"))
        eos = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        suppress = self.gen.get("suppress_tokens") or []
        seq, out = list(ids), []
        for _ in range(max_new_tokens):
            row = self.logits(seq[-self.n_positions :])[-1].copy()
            row[suppress] = -np.inf
            nxt = int(np.argmax(row))
            seq.append(nxt)
            out.append(nxt)
            if nxt in eos:
                break
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", help="an exported HF GPT-2 folder")
    ap.add_argument("--tokens", required=True, help="comma-separated token ids")
    ap.add_argument("--generate", type=int, default=0, help="greedy new tokens")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    ids = [int(x) for x in args.tokens.split(",") if x.strip()]
    model = Gpt2(args.folder)
    logits = model.logits(ids)
    generated = model.greedy(ids, args.generate) if args.generate > 0 else None
    if args.json:
        out = {"tokens": ids, "logits": logits.tolist()}
        if generated is not None:
            out["generated"] = generated
        print(json.dumps(out))
    else:
        for i, (tok, row) in enumerate(zip(ids, logits)):
            top = np.argsort(-row)[:5]
            print(f"{i} {tok}: top " + ", ".join(f"{j} ({row[j]:.4f})" for j in top))
        if generated is not None:
            print("generated:", ",".join(map(str, generated)))


if __name__ == "__main__":
    main()
