#!/usr/bin/env python3
"""One table from the logs `scripts/gpu-check.sh run` leaves in OUT (standard library only).

    python3 scripts/gpu-check-summary.py OUT
"""
import json
import re
import sys
from pathlib import Path


def read(out: Path, name: str) -> str:
    path = out / f"{name}.txt"
    return path.read_text(errors="replace") if path.exists() else ""


def status(out: Path, name: str) -> str:
    path = out / f"{name}.rc"
    if not path.exists():
        return "not run"
    rc = path.read_text().strip()
    return "ok" if rc == "0" else ("timed out" if rc == "124" else f"failed (exit {rc})")


def rows(text: str) -> dict:
    """Markdown table rows `| what | seconds | per second |` -> {what: [per second, ...]}."""
    found: dict = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"[0-9.]+", cells[2] or "x"):
            found.setdefault(cells[0], []).append(float(cells[2]))
    return found


def spread(values: list) -> str:
    """The lowest and highest figure, or the one figure."""
    if not values:
        return "–"
    fmt = (lambda v: f"{v:,.0f}") if min(values) >= 10 else (lambda v: f"{v:.1f}")
    lo, hi = fmt(min(values)), fmt(max(values))
    return lo if lo == hi else f"{lo}–{hi}"


def ratio(ours: list, theirs: list) -> str:
    if not ours or not theirs:
        return "–"
    return f"{(sum(ours) / len(ours)) / (sum(theirs) / len(theirs)):.2f}×"


def main() -> None:
    out = Path(sys.argv[1])
    print("## scripts/gpu-check.sh\n")
    print("```")
    print(read(out, "env").strip())
    device = re.search(r"burn 0\.21 f32 on (\S+)", read(out, "burn_eval_6x256"))
    print(f"burn on {device.group(1) if device else '?'}")
    print("```\n")
    print("| check | burn | PyTorch | burn / PyTorch | status |")
    print("|---|---|---|---|---|")

    parity = read(out, "parity")
    logits = [float(x) for x in re.findall(r"max abs logit difference ([0-9.e+-]+)", parity)]
    losses = [float(x) for x in re.findall(r"loss relative difference ([0-9.e+-]+)", parity)]
    result = re.findall(r"test result: \w+\. (\d+) passed; (\d+) failed", parity)
    tests = f"{result[-1][0]} passed, {result[-1][1]} failed" if result else "no result"
    detail = f"{tests}; logits within {max(logits):.1e}, losses within {max(losses):.1e} rel." if logits and losses else tests
    print(f"| HF parity fixtures (transformers' logits and losses) | {detail} | reference | – | {status(out, 'parity')} |")

    for shape, label in [("6x256", "6 × 256"), ("smollm2", "SmolLM2-135M shapes")]:
        burn = rows(read(out, f"burn_eval_{shape}"))
        torch = rows(read(out, f"torch_eval_{shape}"))
        sdpa = torch.get("sdpa (forward, logits summed)", [])
        st = f"{status(out, f'burn_eval_{shape}')} / {status(out, f'torch_eval_{shape}')}"
        forward = burn.get("forward (logits, summed)", [])
        print(f"| eval {label}, 8 × 256: forward, tokens/s | {spread(forward)} | {spread(sdpa)} (sdpa) | {ratio(forward, sdpa)} | {st} |")
        for what in ["evaluate (per-sample loss)", "evaluate_fitted (25 temperatures)"]:
            ours = burn.get(what, [])
            print(f"| eval {label}: {what}, tokens/s | {spread(ours)} | {spread(sdpa)} (forward) | {ratio(ours, sdpa)} | {status(out, f'burn_eval_{shape}')} |")

    burn = rows(read(out, "burn_eval_smollm2"))
    tf32 = rows(read(out, "torch_eval_smollm2_tf32")).get("sdpa (forward, logits summed)", [])
    if tf32:
        for what in ["forward (logits, summed)", "evaluate (per-sample loss)"]:
            ours = burn.get(what, [])
            print(f"| eval SmolLM2-135M shapes: {what}, tokens/s, against PyTorch with TF32 | {spread(ours)} | {spread(tf32)} (sdpa, TF32) | {ratio(ours, tf32)} | {status(out, 'torch_eval_smollm2_tf32')} |")

    match = re.search(r"max relative difference ([0-9.e+-]+)", read(out, "loss_parity"))
    print(f"| per-sample losses, SmolLM2-shaped random model (near-uniform logits), burn vs torch | max relative difference {match.group(1) if match else '–'} | reference | – | {status(out, 'loss_parity')} |")

    try:
        first = json.loads((out / "burn_losses.json").read_text())["losses"]
        again = json.loads((out / "burn_losses_again.json").read_text())["losses"]
        same = "bit-identical" if first == again else f"differ (max {max(abs(a - b) for a, b in zip(first, again)):.1e})"
    except (OSError, ValueError, KeyError):
        same = "–"
    print(f"| the same losses from a second process | {same} | – | – | {status(out, 'burn_eval_smollm2_again')} |")

    burn = rows(read(out, "burn_generate_smollm2"))
    torch = rows(read(out, "torch_generate_smollm2"))
    cached, theirs = burn.get("key/value cache", []), torch.get("key/value cache", [])
    st = f"{status(out, 'burn_generate_smollm2')} / {status(out, 'torch_generate_smollm2')}"
    print(f"| greedy generation, SmolLM2 shapes, 64 new tokens: new tokens/s | {spread(cached)} | {spread(theirs)} (generate) | {ratio(cached, theirs)} | {st} |")
    tf32 = rows(read(out, "torch_generate_smollm2_tf32")).get("key/value cache", [])
    if tf32:
        print(f"| same, against PyTorch with TF32 | {spread(cached)} | {spread(tf32)} (generate, TF32) | {ratio(cached, tf32)} | {status(out, 'torch_generate_smollm2_tf32')} |")
    for m in ["hf-tiny", "hf-tiny-tied"]:
        found = re.search(r"(\d+)/(\d+) answers equal the CPU's greedy tokens .*; (\d+)/(\d+) pass verify_greedy", read(out, f"greedy_{m}"))
        cell = f"{found.group(3)}/{found.group(4)} pass, {found.group(1)} equal the CPU's tokens" if found else "–"
        print(f"| greedy answers from this device checked on the CPU ({m}) | {cell} | – | – | {status(out, f'greedy_{m}')} |")
    rerun = burn.get("whole sequence every token", [])
    print(f"| same, rerunning the whole sequence each token | {spread(rerun)} | – | – | {status(out, 'burn_generate_smollm2')} |")


if __name__ == "__main__":
    main()
