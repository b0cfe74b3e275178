"""The one max-length rule (trainer.limits), and that training, evaluation and the Space all follow it."""

from types import SimpleNamespace

from trainer.limits import FALLBACK_MAX_LENGTH, max_length


def tok(limit):
    return SimpleNamespace(model_max_length=limit)


def test_requested_capped_by_tokenizer_and_position_embeddings():
    assert max_length(tok(512), SimpleNamespace(max_position_embeddings=512)) == 512
    assert max_length(tok(512), SimpleNamespace(max_position_embeddings=128)) == 128
    assert max_length(tok(512), SimpleNamespace(max_position_embeddings=512), requested=96) == 96
    assert max_length(tok(512), SimpleNamespace(max_position_embeddings=64), requested=96) == 64
    assert max_length(tok(int(1e30))) == FALLBACK_MAX_LENGTH  # a tokenizer without a usable limit
    assert max_length(tok(256), None, requested=1000) == 256


def test_evaluation_and_the_tagger_cut_at_the_model_limit(tmp_path):
    """A model with fewer position embeddings than its tokenizer's limit: evaluation and the Space's tagger both read
    at most that many sub-tokens (a 512 cut would index past the embeddings and fail)."""
    from datasets import DatasetDict

    from space_models import LABELS, VALIDATION, build_lookup_model, validation_dataset
    from trainer.data import NerData
    from trainer.evaluation import evaluate
    from trainer.inference import NerTagger

    model_dir = build_lookup_model(str(tmp_path / "m"), max_position_embeddings=6)
    tagger = NerTagger.from_pretrained(model_dir)
    assert tagger.max_length == 6
    data = NerData(DatasetDict({"validation": validation_dataset()}), LABELS, "IOB2", "fixture")
    ev = evaluate(tagger.model, tagger.tokenizer, data, "validation")
    first = ev.rows[0]  # "John Smith flew to London .": 6 positions hold [CLS] john smith flew to [SEP]
    assert first["pred"] == ["B-PER", "I-PER", "O", "O", "O", "O"]  # London is cut: predicted O, still scored
    assert first["gold"][4] == "B-LOC" and ev.record["num_words"] == sum(len(t) for t, _ in VALIDATION)
    # The tagger reads a text in windows of the same length, so London is found there (nothing is cut).
    assert [e.text for e in tagger.predict("John Smith flew to London .")] == ["John Smith", "London"]
