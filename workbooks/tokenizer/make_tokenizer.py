"""Builds the small byte-level BPE tokenizer in this folder (tokenizer.json + tokenizer_config.json).

It exists so that examples, docs and tests can create and train small models offline: every
string is encodable (byte-level), and the vocabulary (512) keeps embedding tables tiny.

    pip install tokenizers
    python workbooks/tokenizer/make_tokenizer.py
"""

import json
import pathlib

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

HERE = pathlib.Path(__file__).parent

CORPUS = [
    "Question: Is the answer correct? Answer: yes",
    "Question: Which response is more helpful, A or B? Answer: A",
    "The novice overseers labelled the answer as correct, the expert disagreed.",
    "Weak-to-strong generalisation: a strong student trained on weak labels.",
    "Sandwiching places the model between novices and experts.",
    "The capital of France is Paris. The capital of Italy is Rome.",
    "2 + 2 = 4, 3 + 5 = 8, 10 - 7 = 3, 6 * 7 = 42.",
    "positive negative neutral true false agree disagree",
    "Once upon a time there was a model that learned from its overseers.",
] * 20


def main():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=512,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    tok.save(str(HERE / "tokenizer.json"))
    (HERE / "tokenizer_config.json").write_text(
        json.dumps({"eos_token": "<|endoftext|>", "pad_token": "<|pad|>", "tokenizer_class": "PreTrainedTokenizerFast"}, indent=1) + "\n"
    )
    print("vocab", tok.get_vocab_size())


if __name__ == "__main__":
    main()
