#!/usr/bin/env python3
"""Checks an exported folder with Hugging Face transformers itself (needs torch; not run in CI).

    gptlab logits RUN/STAGE --text "我今天想去游乐园" --generate 20 --json > ours.json
    python3 scripts/hf_transformers_check.py EXPORTED_DIR ours.json

A LoRA stage exported with `--format peft --out ADAPTER_DIR` is checked on its base with peft
(needs `peft` too):

    python3 scripts/hf_transformers_check.py ADAPTER_DIR/base ours.json --peft ADAPTER_DIR

Prints whether AutoTokenizer encodes the text to gptlab's ids, the largest logit difference
between GPT2LMHeadModel and gptlab, and whether greedy generate() gives gptlab's ids.
Exits non-zero when they disagree (logits beyond 1e-4 of the largest logit).
"""

import json
import sys

import numpy as np
import torch
from transformers import AutoTokenizer, GPT2LMHeadModel


def main():
    folder, ours_path = sys.argv[1], sys.argv[2]
    ours = json.load(open(ours_path))
    model = GPT2LMHeadModel.from_pretrained(folder).eval()
    if "--peft" in sys.argv:
        from peft import PeftModel

        adapter = sys.argv[sys.argv.index("--peft") + 1]
        model = PeftModel.from_pretrained(model, adapter).eval()
        print("peft loaded the adapter:", type(model).__name__, model.peft_config["default"].target_modules)
    tok = AutoTokenizer.from_pretrained(folder)
    ids = torch.tensor([ours["tokens"]])
    if "generated_text" in ours:
        # The prompt's text is not in the JSON; decoding the ids and re-encoding checks the
        # tokenizer's round trip on the same text.
        text = tok.decode(ours["tokens"])
        print("tokenizer re-encodes the prompt to gptlab's ids:", tok(text)["input_ids"] == ours["tokens"])
    with torch.no_grad():
        logits = model(ids).logits[0].double().numpy()
    ref = np.array(ours["logits"])
    diff = np.abs(logits - ref).max()
    scale = np.abs(ref).max()
    print(f"max |transformers - gptlab| = {diff:.3e} (largest logit {scale:.3f}, relative {diff / scale:.3e})")
    ok = diff <= 1e-4 * scale
    if "generated" in ours:
        out = model.generate(ids, max_new_tokens=len(ours["generated"]), do_sample=False)
        gen = out[0, ids.shape[1]:].tolist()
        same = gen == ours["generated"]
        print("greedy generate() gives gptlab's ids:", same, gen if not same else "")
        ok = ok and same
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
