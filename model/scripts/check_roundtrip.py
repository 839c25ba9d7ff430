#!/usr/bin/env python3
"""Load models saved by our Rust code in transformers and compare logits with burn's.

    cargo run -p subnet-model --example export_roundtrip -- /tmp/roundtrip
    /tmp/hfvenv/bin/python model/scripts/check_roundtrip.py /tmp/roundtrip

For every DIR/<variant>/ (config.json, model.safetensors, inputs.json, burn_logits.safetensors)
it loads LlamaForCausalLM.from_pretrained(DIR/<variant>) in float32 with eager attention, runs
each input alone, and prints the largest absolute logit difference. Exits 1 if any exceeds
--tolerance (default 1e-4) or transformers reports missing/unexpected weights.
"""
import argparse
import json
import pathlib
import sys

import torch
from safetensors.torch import load_file
from transformers import LlamaForCausalLM


def check(variant: pathlib.Path, tolerance: float) -> bool:
    model, info = LlamaForCausalLM.from_pretrained(
        variant, dtype=torch.float32, attn_implementation="eager", output_loading_info=True
    )
    model.eval()
    problems = {k: v for k, v in info.items() if v}
    inputs = json.loads((variant / "inputs.json").read_text())
    burn = load_file(str(variant / "burn_logits.safetensors"))
    worst = 0.0
    with torch.no_grad():
        for i, ids in enumerate(inputs):
            ours = model(torch.tensor([ids])).logits[0]
            worst = max(worst, (ours - burn[f"logits.{i}"]).abs().max().item())
    ok = worst <= tolerance and not problems
    print(f"{variant.name}: tied={model.config.tie_word_embeddings} max |logit diff| = {worst:.3e} "
          f"loading issues = {problems or 'none'} -> {'OK' if ok else 'FAIL'}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dir", type=pathlib.Path)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args()
    variants = sorted(p.parent for p in args.dir.glob("*/burn_logits.safetensors"))
    if not variants:
        sys.exit(f"no */burn_logits.safetensors under {args.dir}")
    results = [check(v, args.tolerance) for v in variants]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
