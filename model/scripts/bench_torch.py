#!/usr/bin/env python3
"""PyTorch CPU baseline for `cargo run --release -p subnet-model --example bench_eval`.

    /tmp/hfvenv/bin/python model/scripts/bench_torch.py [iterations] [threads]

Same model (6 layers, hidden 256, 8 heads / 4 kv, intermediate 688, vocab 262) and batch
(8 x 256 tokens) as the Rust benchmark; float32, no_grad, eager and sdpa attention.
"""
import sys
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

BATCH, SEQ = 8, 256


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if len(sys.argv) > 2:
        torch.set_num_threads(int(sys.argv[2]))
    torch.manual_seed(0)
    ids = torch.tensor([(i * 31) % 256 for i in range(BATCH * SEQ)]).reshape(BATCH, SEQ)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads | batch {BATCH} x {SEQ}, {iterations} iterations")
    print("| attention | seconds / batch | tokens / s |")
    print("|---|---|---|")
    for attn in ["eager", "sdpa"]:
        config = LlamaConfig(
            vocab_size=262, hidden_size=256, intermediate_size=688, num_hidden_layers=6,
            num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=512,
            rms_norm_eps=1e-5, tie_word_embeddings=False, attn_implementation=attn,
        )
        model = LlamaForCausalLM(config).eval()
        with torch.no_grad():
            model(ids)  # warm-up
            start = time.perf_counter()
            for _ in range(iterations):
                model(ids, use_cache=False).logits.sum().item()
            per_batch = (time.perf_counter() - start) / iterations
        print(f"| {attn} | {per_batch:.3f} | {BATCH * SEQ / per_batch:.0f} |")


if __name__ == "__main__":
    main()
