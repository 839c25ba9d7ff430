#!/usr/bin/env python3
"""PyTorch baseline for the burn benchmarks (`bench_eval`, `bench_generate`), in the same run.

    python3 model/scripts/bench_torch.py [iterations] [threads]             # 6x256, CPU, eval
    python3 model/scripts/bench_torch.py 3 2 --shape smollm2                # SmolLM2-135M's shapes
    python3 model/scripts/bench_torch.py 3 --device cuda --save DIR         # also write the model
    python3 model/scripts/bench_torch.py --device cuda --load DIR --compare OURS.json
    python3 model/scripts/bench_torch.py 3 2 --generate                     # greedy generation

Eval: the batch `bench_eval` builds (8 x 256 tokens, ids (i * 31) mod 256, completion = each
sample's second half), float32, no_grad, eager and sdpa attention; on CUDA with TF32 off, so the
figures are full float32 like burn's. `--save DIR` writes the sdpa model (random weights, seed 0)
as an f32 safetensors artifact that `bench_eval --model DIR` loads; `--load DIR` reads one back;
`--compare OURS.json` (from `bench_eval --losses-out`) prints the largest relative difference of
the per-sample completion losses, burn against this model. `--generate`: 64-token prompt, 64 new
tokens, greedy, with the key/value cache, as `bench_generate` does.
"""
import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

SHAPES = {
    "6x256": dict(
        vocab_size=262, hidden_size=256, intermediate_size=688, num_hidden_layers=6,
        num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=512,
        rms_norm_eps=1e-5, tie_word_embeddings=False,
    ),
    "smollm2": dict(
        vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
        num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=8192,
        rms_norm_eps=1e-5, rope_theta=100000.0, tie_word_embeddings=True,
        bos_token_id=1, eos_token_id=2, pad_token_id=2,
    ),
}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def build(args: argparse.Namespace, attn: str) -> LlamaForCausalLM:
    if args.load:
        model = LlamaForCausalLM.from_pretrained(args.load, attn_implementation=attn, dtype=torch.float32)
    else:
        torch.manual_seed(0)
        config = LlamaConfig(**SHAPES[args.shape], attn_implementation=attn)
        model = LlamaForCausalLM(config)
    return model.eval().to(args.device)


def completion_losses(model: LlamaForCausalLM, ids: torch.Tensor) -> list:
    """Mean cross-entropy over each sample's second half, as subnet_model::eval::evaluate."""
    start = ids.shape[1] // 2
    logits = model(ids, use_cache=False).logits.float()
    losses = []
    for row in range(ids.shape[0]):
        losses.append(torch.nn.functional.cross_entropy(logits[row, start - 1 : -1], ids[row, start:]).item())
    return losses


def bench_eval(args: argparse.Namespace) -> None:
    ids = torch.tensor([(i * 31) % 256 for i in range(args.batch * args.seq)]).reshape(args.batch, args.seq)
    ids = ids.to(args.device)
    if args.compare:
        compare(args, ids)
        return
    what = args.load or f"random {args.shape}"
    tf32 = " (TF32 matmuls)" if args.tf32 else ""
    print(f"torch {torch.__version__} f32{tf32} on {args.device}, {torch.get_num_threads()} threads | {what} | "
          f"batch {args.batch} x {args.seq}, {args.iterations} iterations")
    print("| attention | seconds / batch | tokens / s |")
    print("|---|---|---|")
    for attn in ["eager", "sdpa"]:
        model = build(args, attn)
        with torch.no_grad():
            model(ids, use_cache=False).logits.sum().item()  # warm-up
            sync(args.device)
            start = time.perf_counter()
            for _ in range(args.iterations):
                model(ids, use_cache=False).logits.sum().item()
            sync(args.device)
            per_batch = (time.perf_counter() - start) / args.iterations
        print(f"| {attn} (forward, logits summed) | {per_batch:.4f} | {args.batch * args.seq / per_batch:.0f} |")
    if args.save:
        model.save_pretrained(args.save, safe_serialization=True)
        print(f"saved the sdpa model to {args.save}")


def compare(args: argparse.Namespace, ids: torch.Tensor) -> None:
    """Per-sample completion losses of the sdpa model against `bench_eval --losses-out`'s."""
    with torch.no_grad():
        theirs = completion_losses(build(args, "sdpa"), ids)
    with open(args.compare) as f:
        ours = json.load(f)["losses"]
    if len(ours) != len(theirs):
        raise SystemExit(f"{args.compare}: {len(ours)} losses, torch has {len(theirs)}")
    worst = max(abs(a - b) / abs(b) for a, b in zip(ours, theirs))
    print(f"per-sample loss, burn against torch on {args.device}: max relative difference {worst:.2e} "
          f"(torch mean {sum(theirs) / len(theirs):.6f}, burn mean {sum(ours) / len(ours):.6f})")


def bench_generate(args: argparse.Namespace) -> None:
    model = build(args, "sdpa")
    vocab = model.config.vocab_size
    prompt = torch.tensor([[(i * 31) % min(vocab, 256) for i in range(64)]]).to(args.device)
    tf32 = " (TF32 matmuls)" if args.tf32 else ""
    print(f"torch {torch.__version__} f32{tf32} on {args.device}, {torch.get_num_threads()} threads | "
          f"transformers generate, prompt 64 tokens, 64 new, greedy, {args.iterations} runs")
    print("| path | seconds | new tokens / s |")
    print("|---|---|---|")
    kwargs = dict(max_new_tokens=64, min_new_tokens=64, do_sample=False, use_cache=True,
                  pad_token_id=0, eos_token_id=None)
    with torch.no_grad():
        model.generate(prompt, **kwargs)  # warm-up
        for _ in range(args.iterations):
            sync(args.device)
            start = time.perf_counter()
            model.generate(prompt, **kwargs)
            sync(args.device)
            seconds = time.perf_counter() - start
            print(f"| key/value cache | {seconds:.3f} | {64 / seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("iterations", nargs="?", type=int, default=3)
    parser.add_argument("threads", nargs="?", type=int)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--shape", default="6x256", choices=sorted(SHAPES))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--save")
    parser.add_argument("--load")
    parser.add_argument("--compare")
    parser.add_argument("--generate", action="store_true")
    parser.add_argument("--tf32", action="store_true", help="on CUDA, let matrix products use TF32 tensor cores")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    if args.generate:
        bench_generate(args)
    else:
        bench_eval(args)


if __name__ == "__main__":
    main()
