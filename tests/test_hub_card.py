"""The model card (trainer.hub.card), on a real `python -m trainer` output directory (`tiny_output`): every section with
the run's numbers, metadata that round-trips, offline validation. No test touches the network."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard_data import model_index_to_eval_results

from trainer.data.load import NO_DOCUMENTS
from trainer.hub import card as card_mod
from trainer.hub import widgets
from trainer.hub.card import CardError, build_model_card, validate_card, write_model_card
from trainer.outputs import read_predictions, read_results

HUB_ID = "someone/tiny-ner"


# --- the card ------------------------------------------------------------------------------------------------------

SECTIONS = [
    "## Results",
    "### Per entity (validation)",
    "### Per entity (test)",
    "## Labels",
    "## Evaluation protocol",
    "## How to use",
    "## Training",
    "### Hyperparameters",
    "### Training log",
    "### Framework versions",
    "## Intended use and limitations",
]


def test_card_renders_every_section_with_the_runs_numbers(out):
    path = write_model_card(out, HUB_ID)
    assert path == os.path.join(out, "README.md")
    text = Path(path).read_text(encoding="utf-8")
    body = text.split("\n---\n", 1)[1]
    positions = [body.index(s + "\n") for s in SECTIONS]
    assert positions == sorted(positions), "sections out of order"

    results = read_results(out)
    for split in ("validation", "test"):
        o = results[split]["overall"]
        row = (
            f"| {split} | {100 * o['precision']:.2f} | {100 * o['recall']:.2f} | {100 * o['f1']:.2f} | "
            f"{100 * o['accuracy']:.2f} | {results[split]['num_sentences']} | {results[split]['num_words']} |"
        )
        assert row in body
        table = body.split(f"### Per entity ({split})", 1)[1].split("\n#", 1)[0]
        for typ, r in results[split]["per_entity"].items():
            assert (
                f"| {typ} | {100 * r['precision']:.2f} | {100 * r['recall']:.2f} | {100 * r['f1']:.2f} | "
                f"{r['support']} |" in table
            )

    config = json.loads(Path(out, "config.json").read_text())
    for i, label in config["id2label"].items():
        assert f"| {i} | `{label}` |" in body
    assert "The source data was in **IOB1** and was converted to IOB2" in body  # the CoNLL sample is IOB1
    assert "seqeval, mode default (conlleval-compatible)" in body
    assert "Level: word (first sub-token" in body

    run = json.loads(Path(out, "run_config.json").read_text())
    assert f"| `learning_rate` | {run['learning_rate']} |" in body
    assert f"| `per_device_train_batch_size` | {run['per_device_train_batch_size']} |" in body
    assert "`output_dir`" not in body and "hub_model_id" not in body
    train = json.loads(Path(out, "train_results.json").read_text())
    assert f"{train['train_runtime_s']:.1f} s" in body
    assert train["mixed_precision"] == "no" and " in fp32," in body  # the precision used, not the one asked for
    assert f"- torch {train['versions']['torch']}" in body and f"- seqeval {train['versions']['seqeval']}" in body
    assert body.count("\n| ") > 0 and "| 1.00 |" in body and "| 2.00 |" in body  # training log, 2 epochs

    assert f'pipeline("token-classification", model="{HUB_ID}", aggregation_strategy="simple")' in body
    assert "A quick run, not a usable model" in body  # the fixture trains on --max-train-samples 60
    assert "None" not in body.replace("`None`", "")


def test_card_says_how_the_model_was_chosen(out):
    assert "The best checkpoint was chosen by validation F1" in Path(write_model_card(out)).read_text(encoding="utf-8")
    # A run with --eval-strategy no (or no validation split) keeps the model training ended with.
    path = Path(out, "train_results.json")
    path.write_text(json.dumps({**json.loads(path.read_text()), "best_validation_f1": None, "best_checkpoint": None}))
    text = Path(write_model_card(out)).read_text(encoding="utf-8")
    assert "chosen by validation F1" not in text and "the one training ended with" in text


def test_card_metadata_is_the_runs_model_index(out):
    card = ModelCard.load(write_model_card(out, HUB_ID))
    meta = card.data.to_dict()
    assert meta["pipeline_tag"] == "token-classification"
    assert meta["library_name"] == "transformers"
    # the fixture's encoder and data are local: no Hub ids to claim
    assert "base_model" not in meta and "datasets" not in meta
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == "tiny-ner"
    scores = read_results(out)
    got = {(r.dataset_split, r.metric_type): r.metric_value for r in results}
    want = {
        (split, m): round(scores[split]["overall"][m], 4)
        for split in ("validation", "test")
        for m in ("precision", "recall", "f1", "accuracy")
    }
    assert got == want
    assert {r.task_type for r in results} == {"token-classification"}
    assert {r.dataset_type for r in results} == {"conll2003"}  # the data directory's name

    # widget examples are sentences of the validation data, with entities
    rows = read_predictions(out, "validation")
    texts = {widgets.detokenize(r["tokens"]): r for r in rows}
    assert 1 <= len(meta["widget"]) <= 3
    for w in meta["widget"]:
        assert w["text"] in texts and any(t != "O" for t in texts[w["text"]]["gold"])


def test_card_validates_offline_and_the_validator_rejects_broken_metadata(out):
    card = build_model_card(out, HUB_ID)
    validate_card(card)  # what write_model_card runs before writing

    def broken(edit) -> ModelCard:
        meta = card.data.to_dict()
        edit(meta)
        return ModelCard(
            "---\n" + __import__("yaml").safe_dump(meta, sort_keys=False) + "---\n" + card.text,
            ignore_metadata_errors=True,
        )

    with pytest.raises(CardError, match="pipeline_tag"):
        validate_card(broken(lambda m: m.update(pipeline_tag="text-classification")))
    with pytest.raises(CardError, match="model-index"):
        validate_card(broken(lambda m: m.pop("model-index")))
    with pytest.raises(CardError):
        validate_card(broken(lambda m: m["model-index"][0]["results"][0]["metrics"][0].update(value=87.5)))
    with pytest.raises(CardError, match="base_model"):
        validate_card(broken(lambda m: m.update(base_model="not a repo id!")))
    with pytest.raises(CardError):  # a model-index the Hub could not read
        validate_card(ModelCard(str(card).replace("    dataset:\n", "    data:\n", 1), ignore_metadata_errors=True))


def test_card_names_hub_base_model_dataset_and_license(out):
    run_config = Path(out, "run_config.json")
    cfg = json.loads(run_config.read_text())
    cfg.update(model_name_or_path="bert-base-cased", data_dir=None, dataset_name="conll2003", license="apache-2.0")
    run_config.write_text(json.dumps(cfg))
    card = build_model_card(out, HUB_ID)
    meta = card.data.to_dict()
    assert meta["base_model"] == "bert-base-cased"
    assert meta["datasets"] == ["eriktks/conll2003"]  # the project's alias for conll2003, as the trainer loads it
    assert meta["license"] == "apache-2.0"
    _, results = model_index_to_eval_results(meta["model-index"])
    assert {(r.dataset_type, r.dataset_revision) for r in results} == {("eriktks/conll2003", "refs/convert/parquet")}
    assert "[bert-base-cased](https://huggingface.co/bert-base-cased)" in card.text
    assert "License: `apache-2.0`" in card.text


def test_card_for_plain_tags_uses_tag_wording_and_first_aggregation(out):
    # A POS run: per-tag scores, no chunk scheme. Rewrites the fixture's results as a plain-tag run would write them.
    results_path = Path(out, "eval_results.json")
    results = json.loads(results_path.read_text())
    for rec in results.values():
        rec["protocol"].update(metric="per-tag accuracy", mode="plain tags", scheme="none")
    results_path.write_text(json.dumps(results))
    cfg_path = Path(out, "run_config.json")
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "task": "pos", "label_scheme": "none"}))
    text = build_model_card(out, HUB_ID).text
    assert "### Per tag (validation)" in text and "Plain tags (no chunk scheme)" in text
    assert 'aggregation_strategy="first"' in text and "part-of-speech tagging" in text
    assert "IOB2 scheme" not in text


def test_card_states_how_the_model_reads_text(out):
    """The context mode, window and stride come from the model's config.json (what the Space reads it with); data
    without document boundaries is said to be read in order; a sentence-mode model says so."""
    body = build_model_card(out, HUB_ID).text
    assert (
        "- Context: **documents**. Consecutive sentences of a document are read together in windows of up to 256 "
        "sub-tokens, consecutive windows sharing 64;"
    ) in body
    assert "no document boundaries" not in body and "training windows" in body
    assert "| `context` | document |" in body and "| `stride` | 64 |" in body

    train_path = Path(out, "train_results.json")
    train = json.loads(train_path.read_text())
    train["data"]["documents"] = NO_DOCUMENTS
    train_path.write_text(json.dumps(train))
    assert (
        f"- The data has no document boundaries ({NO_DOCUMENTS}): each split was read as one stream of "
        f"sentences, in order."
    ) in build_model_card(out, HUB_ID).text

    config_path = Path(out, "config.json")
    config = json.loads(config_path.read_text())
    config["ner_window"] = {"context": "sentence", "max_length": 512, "stride": 64}
    config_path.write_text(json.dumps(config))
    body = build_model_card(out, HUB_ID).text
    assert "- Context: **sentences**. Each sentence is read on its own, in windows of up to 512 sub-tokens" in body
    assert "no document boundaries" not in body
    assert "- Decoding: each word's most probable label on its own (argmax)." in body  # a record without decoding

    assert "Case signal" not in body and "NerTagger.from_pretrained" not in body

    config["ner_window"].update(decoding="viterbi", case_signal="token_type")
    config_path.write_text(json.dumps(config))
    body = build_model_card(out, HUB_ID).text
    assert "- Decoding: **valid IOB2 sequences**." in body
    assert "- Case signal: **on**." in body
    assert "the plain pipeline does not set it" in body and f'NerTagger.from_pretrained("{HUB_ID}")' in body


def test_license_falls_back_to_the_local_base_models_card(minilm_dir):
    # the packaged all-MiniLM-L6-v2 ships its model card (apache-2.0); no network is involved
    assert card_mod._base_model_license(minilm_dir) == "apache-2.0"
    assert card_mod._base_model_license("nobody/not-cached-model") is None


def test_card_needs_a_trained_output(out, tmp_path):
    os.remove(os.path.join(out, "README.md"))  # the card training wrote
    os.remove(os.path.join(out, "eval_results.json"))
    with pytest.raises(CardError, match="eval_results.json"):
        write_model_card(out)
    with pytest.raises(CardError, match="run_config.json"):
        write_model_card(str(tmp_path))
    assert not os.path.exists(os.path.join(out, "README.md"))


def test_widget_examples_cover_entity_types_and_read_like_text():
    rows = [
        {"tokens": "No entities in this rather plain sentence .".split(), "gold": ["O"] * 8},
        {
            "tokens": "John Smith visited Paris , France , on Monday .".split(),
            "gold": ["B-PER", "I-PER", "O", "B-LOC", "O", "B-LOC", "O", "O", "O", "O"],
        },
        {
            "tokens": "Mary went to Rome ( Italy ) today .".split(),
            "gold": ["B-PER", "O", "O", "B-LOC", "O", "B-LOC", "O", "O", "O"],
        },
        {
            "tokens": "Reuters reported that the EU said it 's fine .".split(),
            "gold": ["B-ORG", "O", "O", "O", "B-ORG", "O", "O", "O", "O", "O"],
        },
    ]
    # PER+LOC first (the shorter of two such sentences), then the one that adds ORG; never the one without entities
    assert widgets.widget_examples(rows, k=2) == [
        "Mary went to Rome (Italy) today.",
        "Reuters reported that the EU said it's fine.",
    ]
    assert widgets.widget_examples(rows, k=5)[2] == "John Smith visited Paris, France, on Monday."
    assert len(widgets.widget_examples(rows, k=5)) == 3
    assert widgets.widget_examples(rows[:1], k=3) == ["No entities in this rather plain sentence."]
