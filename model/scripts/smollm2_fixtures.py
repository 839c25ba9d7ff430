"""One-off: reference values for the SmolLM2-135M-Instruct import, computed by transformers.

transformers reads the same llama.cpp GGUF that `scripts/fetch-base-model.sh` fetches (it needs
the `gguf` and `accelerate` packages), de-quantizes it to f32, and gives:
- per-sample losses (mean cross-entropy over the completion tokens, labels -100 on the prompt)
  and the first logits of the last position, for fixed token ids and for chat-formatted samples;
- the token ids of plain texts and of chat prompts rendered with the model's own template.

The output is committed (model/tests/fixtures/smollm2_135m.json) and compared with our import in
CI without torch (model/tests/smollm2.rs). Run it again only when the fixture must change:

    python3 -m venv /tmp/tv && /tmp/tv/bin/pip install torch transformers gguf accelerate
    /tmp/tv/bin/python model/scripts/smollm2_fixtures.py GGUF_FILE > model/tests/fixtures/smollm2_135m.json
"""

import json
import os
import random
import sys

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer


def main() -> None:
    path = sys.argv[1]
    directory, name = os.path.split(os.path.abspath(path))
    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, torch_dtype=torch.float32)
    model.eval()

    texts = [
        "Hello, world!",
        "12+7=19",
        "The quick brown fox jumps over 1234 lazy dogs.",
        "  leading spaces\tand a tab\nand a newline",
        "naïve café — ünïcödé ✓",
    ]
    encoded = [{"text": t, "ids": tokenizer.encode(t, add_special_tokens=False)} for t in texts]

    conversations = [
        [{"role": "user", "content": "What is 2+2?"}],
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a colour."},
        ],
    ]
    chats = []
    for messages in conversations:
        rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        chats.append(
            {
                "messages": messages,
                "rendered": rendered,
                "ids": tokenizer.encode(rendered, add_special_tokens=False),
            }
        )

    rng = random.Random(1234)
    samples = []
    for length, start in [(16, 4), (32, 10), (48, 1)]:
        ids = [rng.randrange(0, model.config.vocab_size) for _ in range(length)]
        samples.append({"input_ids": ids, "completion_start": start})
    # Chat-formatted: the rendered prompt, then the assistant's answer and the end of its turn.
    for prompt, answer in [(chats[0], "2+2 is 4."), (chats[1], "Blue.")]:
        completion = tokenizer.encode(answer + "<|im_end|>", add_special_tokens=False)
        samples.append(
            {"input_ids": prompt["ids"] + completion, "completion_start": len(prompt["ids"])}
        )

    with torch.no_grad():
        for sample in samples:
            ids = torch.tensor([sample["input_ids"]])
            logits = model(ids).logits[0].double()
            start = sample["completion_start"]
            targets = ids[0, start:]
            log_probs = torch.log_softmax(logits[start - 1 : -1], dim=-1)
            loss = -log_probs.gather(1, targets[:, None]).mean()
            sample["loss"] = loss.item()
            sample["last_logits"] = logits[-1, :16].tolist()

    json.dump(
        {
            "source": "transformers "
            + transformers.__version__
            + ", torch "
            + torch.__version__
            + ", from "
            + name,
            "vocab_size": model.config.vocab_size,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "encoded": encoded,
            "chats": chats,
            "samples": samples,
        },
        sys.stdout,
        indent=1,
        ensure_ascii=False,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
