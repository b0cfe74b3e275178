"""Word-level distillation (trainer.training.distill): a teacher with another tokenizer than its student teaches it
through one label distribution per word, the teacher's own prediction for that word."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import CONLL_SAMPLE, train_cli
from seqeval.metrics import f1_score
from space_models import LABELS, build_lookup_model
from transformers import AutoModelForTokenClassification, AutoTokenizer, BertTokenizerFast

from trainer.config import Config
from trainer.data.load import load_data
from trainer.evaluation.word_level import predict_words
from trainer.inference.tagger import load_tokenizer
from trainer.reading.windows import DocumentWindows, Window, model_window
from trainer.training.distill import soft_targets, teacher_labels, word_index, word_log_probs

# A cased teacher: its own WordPiece vocabulary (trained on the sample), whole-word pieces for the names it knows.
CASED_RULES = {
    "London": ("B-LOC", 3.0),
    "Germany": ("B-LOC", 3.0),
    "Britain": ("B-LOC", 3.0),
    "Reuters": ("B-ORG", 3.0),
    "German": ("B-MISC", 3.0),
    "British": ("B-MISC", 3.0),
    "European": ("B-ORG", 3.0),
    "Union": ("I-ORG", 3.0),
}


def sample_sentences(split: str = "eng.train") -> list[list[str]]:
    data = load_data(Config(data_dir=str(CONLL_SAMPLE)))
    return list(data.splits["train" if split == "eng.train" else "validation"]["tokens"])


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory) -> str:
    from tokenizers import BertWordPieceTokenizer

    words = BertWordPieceTokenizer(lowercase=False, strip_accents=False)
    words.train_from_iterator([" ".join(s) for s in sample_sentences()], vocab_size=600, min_frequency=1)
    raw = tmp_path_factory.mktemp("vocab")
    words.save_model(str(raw))
    tokenizer = BertTokenizerFast(vocab_file=str(raw / "vocab.txt"), do_lower_case=False)
    tokenizer.add_tokens([w for w in CASED_RULES if tokenizer.tokenize(w) != [w]])  # each name one piece
    return build_lookup_model(str(tmp_path_factory.mktemp("cased-teacher")), tokenizer=tokenizer, rules=CASED_RULES)


def test_the_teacher_reads_with_another_vocabulary_than_its_student(teacher_dir, tiny_encoder_dir):
    teacher, student = AutoTokenizer.from_pretrained(teacher_dir), AutoTokenizer.from_pretrained(tiny_encoder_dir)
    assert teacher.get_vocab() != student.get_vocab() and len(teacher) < len(student) // 10
    assert teacher.tokenize("London") == ["London"] and student.tokenize("London") == ["london"]


def test_a_words_soft_target_is_the_teachers_own_prediction_for_it(teacher_dir, tmp_path):
    sentences = sample_sentences("eng.testa")
    doc_ids = [0] * len(sentences)
    logp = word_log_probs(teacher_dir, sentences, doc_ids, LABELS)
    assert logp.shape == (sum(map(len, sentences)), len(LABELS)) and not np.isnan(logp).any()
    model = AutoModelForTokenClassification.from_pretrained(teacher_dir)
    tokenizer = load_tokenizer(teacher_dir)
    predicted = predict_words(model, tokenizer, sentences, model_window(tokenizer, model.config), doc_ids)
    assert [LABELS[i] for i in logp.argmax(-1)] == [t for s in predicted for t in s]
    assert {"B-LOC", "B-ORG"} <= {t for s in predicted for t in s}  # it does predict entities
    # One teacher at temperature 1: the soft targets are its probabilities; cached in the output directory.
    cfg = Config(teacher=teacher_dir, distill_temperature=1.0, output_dir=str(tmp_path))
    targets = soft_targets(cfg, sentences, doc_ids, LABELS)
    np.testing.assert_allclose(targets, np.exp(logp), atol=1e-6)
    assert (tmp_path / "teacher_targets.npz").exists()
    np.testing.assert_array_equal(soft_targets(cfg, sentences, doc_ids, LABELS), targets)  # read back


def test_a_soft_target_goes_to_the_first_sub_token_of_its_word_only(tiny_encoder_dir):
    """In overlapping windows over documents, each word's soft target sits on its first sub-token, in every window
    that holds that sub-token, and nowhere else: not on its other pieces, not in a window opening inside it."""
    sentences = sample_sentences()[:40]
    doc_ids = [i // 10 for i in range(len(sentences))]  # 4 documents
    tokenizer = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    windows = DocumentWindows.build(tokenizer, sentences, doc_ids, Window("document", max_length=24, stride=8))
    words = [w for s in sentences for w in s]
    index = word_index(windows)
    seen = set()
    for k, row in enumerate(index):
        tokens = tokenizer.convert_ids_to_tokens(windows.inputs["input_ids"][k])
        placed = [i for i in row if i >= 0]
        assert len(placed) == len(set(placed))  # one position per word
        for pos, i in enumerate(row):
            if i >= 0:
                assert tokens[pos] == tokenizer.tokenize(words[i])[0]
        seen.update(placed)
    assert seen == set(range(len(words)))  # every word is taught somewhere
    assert any(len(tokenizer.tokenize(w)) > 1 for w in words)  # words of several pieces were there to mislead it


def test_label_sets_must_match(teacher_dir, tmp_path):
    other = tmp_path / "other"
    AutoModelForTokenClassification.from_pretrained(teacher_dir).save_pretrained(other)
    config = json.loads((other / "config.json").read_text())
    config["id2label"] = {str(i): t.replace("MISC", "EVENT") for i, t in enumerate(LABELS)}
    config["label2id"] = {t: int(i) for i, t in config["id2label"].items()}
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="other label sets .*B-EVENT.*B-MISC"):
        teacher_labels([teacher_dir, str(other)], ["O"])
    with pytest.raises(ValueError, match="labels no teacher knows: B-MISC"):
        teacher_labels([str(other)], ["O", "B-MISC"])


@pytest.mark.parametrize("engine", ["trainer", "accelerate"])
def test_with_the_teacher_alone_the_student_learns_entities_its_gold_data_never_shows(
    engine, teacher_dir, tiny_encoder_dir, tmp_path
):
    """--distill-alpha 0 on training data whose every gold tag is O: whatever entities the student finds, it learnt
    from the soft targets. On those sentences its entities agree with the teacher's far above chance (the tiny random
    student learns 8 names from ~45 mentions; it mixes some types up)."""
    every = sample_sentences()
    named = [s for s in every if any(w in CASED_RULES for w in s)]  # 33 sentences with the teacher's 45 names
    sentences = named + [s for s in every if s not in named][: len(named)]
    train = tmp_path / "all_o.jsonl"
    train.write_text("".join(json.dumps({"tokens": s, "tags": ["O"] * len(s)}) + "\n" for s in sentences))
    out = tmp_path / "student"
    train_cli(["--model-name-or-path", tiny_encoder_dir, "--train-file", str(train), "--validation-file", str(train),
               "--output-dir", str(out), "--engine", engine, "--teacher", teacher_dir, "--distill-alpha", "0",
               "--distill-temperature", "1", "--learning-rate", "3e-3", "--num-train-epochs", "12", "--context",
               "sentence", "--per-device-train-batch-size", "4", "--eval-strategy", "no"])  # fmt: skip
    student = AutoModelForTokenClassification.from_pretrained(out)
    tokenizer = load_tokenizer(str(out))
    theirs = predict_words(student, tokenizer, sentences, model_window(tokenizer, student.config))
    teacher = AutoModelForTokenClassification.from_pretrained(teacher_dir)
    teacher_tok = load_tokenizer(teacher_dir)
    ours = predict_words(teacher, teacher_tok, sentences, model_window(teacher_tok, teacher.config))
    assert sum(t != "O" for s in theirs for t in s) > 20 and f1_score(ours, theirs) > 0.4
    card = Path(out, "README.md").read_text()
    assert "Distilled from 1 teacher (cased-teacher0)" in card and "| `distill_alpha` | 0.0 |" in card
