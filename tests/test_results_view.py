"""Error kinds (trainer.evaluation.errors) and the results tab's data (trainer.results_view), without a server."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from space_models import VALIDATION, build_lookup_model, write_validation_conll, write_validation_results

from trainer import results_view as rv
from trainer.evaluation.errors import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    KINDS,
    WRONG_BOUNDARY,
    WRONG_TYPE,
    WRONG_TYPE_AND_BOUNDARY,
    classify_errors,
    error_table,
)
from trainer.inference.tagger import Entity, NerTagger


def kinds(gold, pred):
    return [(e.kind, e.gold, e.pred) for e in classify_errors(gold.split(), pred.split())]


def test_error_kinds():
    assert kinds("B-PER I-PER O", "B-PER I-PER O") == []
    assert kinds("O O O", "O B-LOC O") == [(FALSE_POSITIVE, None, ("LOC", 1, 2))]
    assert kinds("B-ORG O O", "O O O") == [(FALSE_NEGATIVE, ("ORG", 0, 1), None)]
    assert kinds("B-PER I-PER O", "B-LOC I-LOC O") == [(WRONG_TYPE, ("PER", 0, 2), ("LOC", 0, 2))]
    assert kinds("B-PER I-PER O", "O B-PER O") == [(WRONG_BOUNDARY, ("PER", 0, 2), ("PER", 1, 2))]
    assert kinds("B-PER I-PER O", "B-PER I-PER I-PER") == [(WRONG_BOUNDARY, ("PER", 0, 2), ("PER", 0, 3))]
    assert kinds("B-ORG I-ORG I-ORG", "O B-LOC O") == [(WRONG_TYPE_AND_BOUNDARY, ("ORG", 0, 3), ("LOC", 1, 2))]
    # Several errors in one sentence, in position order; a gold span overlapped by a wrong prediction is not also
    # counted as missed.
    assert kinds("B-PER O B-LOC O B-ORG", "B-PER O B-ORG B-MISC O") == [
        (WRONG_TYPE, ("LOC", 2, 3), ("ORG", 2, 3)),
        (FALSE_POSITIVE, None, ("MISC", 3, 4)),
        (FALSE_NEGATIVE, ("ORG", 4, 5), None),
    ]


def test_error_table_filters():
    rows = [
        {"doc_id": 0, "sent_idx": i, "tokens": t, "gold": g, "pred": p}
        for i, (t, g, p) in enumerate(
            [
                ("a b c".split(), ["B-PER", "O", "O"], ["B-LOC", "O", "O"]),
                ("a b c".split(), ["O", "O", "O"], ["O", "B-MISC", "O"]),
                ("a b c".split(), ["B-ORG", "O", "O"], ["B-ORG", "O", "O"]),
            ]
        )
    ]
    all_errors = error_table(rows)
    assert [(r["sent_idx"], r["kind"], r["gold"], r["pred"]) for r in all_errors] == [
        (0, WRONG_TYPE, "PER: a", "LOC: a"),
        (1, FALSE_POSITIVE, "", "MISC: b"),
    ]
    assert len(error_table(rows, types=["LOC"])) == 1  # matches the predicted type as well as the gold one
    assert len(error_table(rows, types=["PER"])) == 1
    assert error_table(rows, types=["ORG"]) == []
    assert [r["kind"] for r in error_table(rows, kinds=[FALSE_POSITIVE])] == [FALSE_POSITIVE]
    assert error_table(rows, types=[], kinds=KINDS) == []


def test_highlight_payloads():
    text = "John <b>in</b> Paris"
    ents = [Entity("PER", "John", 0, 4, 0.9), Entity("LOC", "Paris", 15, 20, 0.8)]
    assert rv.highlighted(text, ents) == {
        "text": text,
        "entities": [{"entity": "PER", "start": 0, "end": 4}, {"entity": "LOC", "start": 15, "end": 20}],
    }
    assert rv.entity_rows(ents)[1] == ["LOC", "Paris", 0.8, 15, 20]
    words = rv.highlighted_words(["New", "York", "is", "big"], ["B-LOC", "I-LOC", "O", "O"])
    assert words == {"text": "New York is big", "entities": [{"entity": "LOC", "start": 0, "end": 8}]}


def test_colors_are_stable_and_distinct_for_known_types():
    c = rv.entity_colors(["PER", "ORG", "LOC", "MISC", "DATE"])
    assert len(set(c.values())) == 5
    assert c == rv.entity_colors(["DATE", "MISC", "LOC", "ORG", "PER"])
    assert c["DATE"] == rv.entity_colors(["DATE"])["DATE"]


@pytest.fixture(scope="module")
def lookup_dir(tmp_path_factory):
    return build_lookup_model(str(tmp_path_factory.mktemp("lookup-results")))


def test_results_of_a_model_directory(lookup_dir, tmp_path):
    model = str(tmp_path / "m")
    shutil.copytree(lookup_dir, model)
    tagger = NerTagger.from_pretrained(model)
    assert rv.ModelResults(model).results() is None
    write_validation_results(tagger, model)
    res = rv.ModelResults(model)
    record = res.results()
    rows = rv.per_entity_rows(record)
    assert [row[0] for row in rows] == ["LOC", "MISC", "ORG", "PER"]  # MISC: predicted only ("maybe"), support 0
    assert rows[0] == ["LOC", 0.6, 1.0, 0.75, 3]  # two "Paris" (persons) predicted LOC
    assert rows[1] == ["MISC", 0.0, 0.0, 0.0, 0]
    chart = rv.chart_svg(record)
    assert chart.count('class="bar"') == 12 and chart.startswith("<svg") and chart.endswith("</svg>")
    per_f1 = record["per_entity"]["PER"]["f1"]
    assert 'data-type="PER" data-metric="f1"' in chart and f"PER f1 {per_f1:.3f}" in chart
    md = rv.summary_markdown(record, model)
    assert "fixture" in md and "validation" in md and "F1" in md and "word" in md
    assert model not in md and "`m`" in md  # a local model is named by its directory's name only
    record = {**record, "dataset": f"CoNLL files in {tmp_path}/data [validation: {tmp_path}/data/eng.testa]"}
    md = rv.summary_markdown(record, model)
    assert str(tmp_path) not in md and "CoNLL files in data [validation: eng.testa]" in md
    errors = rv.error_rows(res.predictions())
    assert sorted({e["kind"] for e in errors}) == sorted(KINDS)  # the fixture holds one of each
    assert rv.error_table_rows(errors)[0][:5] == [0, 2, WRONG_TYPE, "PER: Paris", "LOC: Paris"]
    # Real sentences make the first tab's examples; those under six words or two entities are skipped.
    assert rv.example_sentences(res.predictions(), n=2) == [" ".join(VALIDATION[0][0])]


def model_with_config(lookup_dir, tmp_path, **cfg) -> str:
    from trainer.config import Config

    model = str(tmp_path / "m")
    shutil.copytree(lookup_dir, model)
    Config(model_name_or_path="encoder", **cfg).save(os.path.join(model, "run_config.json"))
    return model


def test_compute_from_a_validation_file_shipped_with_the_model_writes_nothing(lookup_dir, tmp_path):
    model = model_with_config(lookup_dir, tmp_path, validation_file="validation.conll", max_eval_samples=2)
    write_validation_conll(os.path.join(model, "validation.conll"))
    before = sorted(os.listdir(model))
    seen = []
    results = rv.ModelResults(model)
    record = results.compute(NerTagger.from_pretrained(model), lambda f, d: seen.append(f), batch_size=2)
    assert record["num_sentences"] == len(VALIDATION)  # the whole split, not the run's sample limit
    assert seen[0] == 0.0 and seen[-1] == 1.0 and len(seen) >= 4
    assert results.results()["overall"] == record["overall"] and len(results.predictions()) == len(VALIDATION)
    assert sorted(os.listdir(model)) == before  # in memory only: the model directory is never written
    assert rv.ModelResults(model).results() is None  # and nothing is cached on disk for a later model


@pytest.mark.parametrize("where", ["absolute", "parent", "data_dir", "symlink"])
def test_compute_never_reads_a_local_path_the_config_names(lookup_dir, tmp_path, where):
    secret = tmp_path / "token"
    secret.write_text("hf_" + "SECRETsecretSECRET\n")
    name = {"absolute": str(secret), "parent": "../token", "symlink": "link.conll", "data_dir": None}[where]
    model = model_with_config(
        lookup_dir, tmp_path, **({"data_dir": str(tmp_path)} if where == "data_dir" else {"validation_file": name})
    )
    if where == "symlink":
        os.symlink(secret, os.path.join(model, "link.conll"))
    with pytest.raises(RuntimeError) as info:
        rv.ModelResults(model).compute(NerTagger.from_pretrained(model))
    assert "SECRET" not in str(info.value) and "Space does not read" in str(info.value)


def test_a_damaged_validation_file_in_the_model_is_not_quoted(lookup_dir, tmp_path):
    model = model_with_config(lookup_dir, tmp_path, validation_file="validation.conll")
    Path(model, "validation.conll").write_text("hf_SECRET\n")  # one column: not CoNLL
    with pytest.raises(RuntimeError) as info:
        rv.ModelResults(model).compute(NerTagger.from_pretrained(model))
    assert "SECRET" not in str(info.value) and "not in a format" in str(info.value)


@pytest.mark.parametrize("name", ["eval_results.json", "predictions_validation.jsonl"])
def test_a_result_file_cut_short_is_reported_not_raised(lookup_dir, tmp_path, name):
    model = str(tmp_path / "m")
    shutil.copytree(lookup_dir, model)
    write_validation_results(NerTagger.from_pretrained(model), model)
    path = Path(model, name)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # an interrupted write
    res = rv.ModelResults(model)
    if name == "eval_results.json":
        assert res.results() is None
    else:
        assert res.results() is not None and res.predictions() == []
    assert name in res.note and "cannot be read" in res.note


def test_results_of_an_interrupted_run_carry_a_warning(tiny_output, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(tiny_output, model)
    os.remove(model / "run_complete.json")
    res = rv.ModelResults(str(model))
    assert res.results() is not None and "did not complete" in res.note


def test_hub_model_without_results_offline():
    res = rv.ModelResults("no-such-user/no-such-model")
    assert res.results() is None and res.predictions() == []
    assert "no-such-user/no-such-model" in res.note


def test_real_trainer_output_is_read(tiny_output):
    """The contract with `python -m trainer`: its output directory's results and predictions are what we read."""
    res = rv.ModelResults(tiny_output)
    record = res.results()
    assert {row[0] for row in rv.per_entity_rows(record)} <= {"PER", "ORG", "LOC", "MISC"}
    summary = rv.summary_markdown(record, tiny_output)
    assert "F1" in summary and "Context: whole documents, read in windows of 256 sub-tokens sharing 64" in summary
    assert "Decoding: the most probable valid IOB2 sequence (Viterbi)" in summary  # the default, as trained
    assert "Case signal: capitals flagged in token_type_ids" in summary  # auto: MiniLM's tokenizer lower-cases
    for e in rv.error_rows(res.predictions()):
        assert e["kind"] in KINDS and e["sentence"]
