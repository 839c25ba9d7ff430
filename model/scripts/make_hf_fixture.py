#!/usr/bin/env python3
"""Make the tiny Hugging Face Llama fixtures that `model/tests/hf_interop.rs` checks burn against.

Usage (one-off, outside CI; any recent torch + transformers):
    python3 -m venv /tmp/hfvenv && /tmp/hfvenv/bin/pip install torch transformers safetensors
    /tmp/hfvenv/bin/python model/scripts/make_hf_fixture.py model/tests/fixtures

For each variant it writes DIR/<name>/:
    config.json, model.safetensors   as transformers' save_pretrained writes them (bf16 or f16 weights)
    reference.json                   input ids, completion_start, per-sample loss (mean CE over completion tokens)
    reference_logits.safetensors     logits.<i>: [len_i, vocab] float32, each sample run alone
Weights are drawn with a fixed seed, rounded to the storage dtype, and the reference is computed
in float32 from the rounded weights, so the file holds exactly the model the logits came from.
"""
import json
import pathlib
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

# Byte tokenizer ids: 0-255 bytes, then BOS, EOS, PAD.
BOS, EOS, PAD = 256, 257, 258

SAMPLES = [
    # (input ids, completion_start)
    ([BOS] + list(b"12+7=") + list(b"19") + [EOS], 6),
    ([BOS] + list(b"reverse: abc ->") + list(b" cba") + [EOS], 16),
    ([BOS] + list(b"sort 3 1 2:") + list(b" 1 2 3") + [EOS, 259, 261], 12),
    ([BOS, 65, 66], 2),
]

VARIANTS = [
    # name, tie_word_embeddings, layers, storage dtype, rope_theta
    ("hf-tiny", False, 2, torch.bfloat16, 10000.0),
    ("hf-tiny-tied", True, 1, torch.float16, 500.0),
]


def make(out: pathlib.Path, name: str, tied: bool, layers: int, dtype: torch.dtype, theta: float) -> None:
    torch.manual_seed(1234)
    config = LlamaConfig(
        vocab_size=262,
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        rms_norm_eps=1e-5,
        rope_theta=theta,
        tie_word_embeddings=tied,
        bos_token_id=BOS,
        eos_token_id=EOS,
        pad_token_id=PAD,
        attn_implementation="eager",
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        # Larger than HF's std 0.02 so logits differ clearly between tokens and positions;
        # norm weights away from 1 so they are exercised too.
        for pname, param in model.named_parameters():
            if pname.endswith("norm.weight"):
                param.copy_(1.0 + 0.3 * torch.randn_like(param))
            else:
                param.copy_(0.35 * torch.randn_like(param))
            # Round to the storage dtype, compute in f32. Only parameters: `model.to(dtype)`
            # would also round the rotary `inv_freq` buffer and skew the reference.
            param.copy_(param.to(dtype).to(torch.float32))

    records, logits_out = [], {}
    with torch.no_grad():
        for i, (ids, start) in enumerate(SAMPLES):
            logits = model(torch.tensor([ids])).logits[0].float()
            targets = torch.tensor(ids[start:])
            loss = torch.nn.functional.cross_entropy(logits[start - 1 : len(ids) - 1], targets)
            logits_out[f"logits.{i}"] = logits.contiguous()
            records.append(
                {"input_ids": ids, "completion_start": start, "loss": loss.item(), "tokens": len(ids) - start}
            )

    target = out / name
    target.mkdir(parents=True, exist_ok=True)
    model.to(dtype).save_pretrained(target)
    (target / "generation_config.json").unlink(missing_ok=True)
    save_file(logits_out, str(target / "reference_logits.safetensors"))
    meta = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "dtype": str(dtype).removeprefix("torch."),
        "samples": records,
    }
    (target / "reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{target}: {[round(r['loss'], 4) for r in records]}")


def main() -> None:
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "model/tests/fixtures")
    for variant in VARIANTS:
        make(out, *variant)


if __name__ == "__main__":
    main()
