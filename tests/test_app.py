"""app.py served on 127.0.0.1 and called through its named API endpoints with gradio_client."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from gradio_client import Client
from space_models import build_lookup_model, write_validation_results

import app
from trainer.inference.tagger import MAX_INPUT_CHARS, NerTagger

TYPES = ["LOC", "MISC", "ORG", "PER"]


def serve(demo):
    demo.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
    return demo, Client(demo.local_url, verbose=False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """The lookup model with validation results written by the evaluation path."""
    d = build_lookup_model(str(tmp_path_factory.mktemp("app-model")))
    t = NerTagger.from_pretrained(d)
    write_validation_results(t, d)
    return d


@pytest.fixture(scope="module")
def demo_and_client(model_dir):
    tagger = NerTagger.from_pretrained(model_dir)
    demo, client = serve(app.build_demo(model_dir, tagger))
    yield tagger, demo, client
    demo.close()


@pytest.fixture(scope="module")
def served(demo_and_client):
    tagger, _, client = demo_and_client
    return tagger, client


def predict(client, *args) -> dict:
    return client.predict(*args, api_name="/predict")


def texts_of(answer) -> list[str]:
    return [e["text"] for e in answer["entities"]]


def test_predict_endpoint(served):
    _, client = served
    text = "John Zwingmann flew from Paris to Berlin with Reuters."
    answer = predict(client, text, 0.0, TYPES)
    assert answer["text"] == text and answer["message"] == ""
    assert [(e["type"], e["text"]) for e in answer["entities"]] == [
        ("PER", "John Zwingmann"),
        ("LOC", "Paris"),
        ("LOC", "Berlin"),
        ("ORG", "Reuters"),
    ]
    for e in answer["entities"]:
        assert text[e["start"] : e["end"]] == e["text"] and 0 < e["score"] <= 1


def test_the_page_shows_the_api_answer(demo_and_client):
    """What the button renders from /predict's answer (outside the queue): highlighted spans, table, message."""
    _, demo, client = demo_and_client
    text = "John Zwingmann flew from Paris."
    answer = predict(client, text, 0.0, TYPES)
    show = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "show")
    highlight, rows, message = show(answer)
    assert highlight == {
        "text": text,
        "entities": [{"entity": "PER", "start": 0, "end": 14}, {"entity": "LOC", "start": 25, "end": 30}],
    }
    assert [row[:2] for row in rows] == [["PER", "John Zwingmann"], ["LOC", "Paris"]] and message == ""


def test_threshold_and_types_through_the_api(served):
    _, client = served
    assert [e["type"] for e in predict(client, "maybe John", 0.0, TYPES)["entities"]] == ["MISC", "PER"]
    assert [e["type"] for e in predict(client, "maybe John", 0.9, TYPES)["entities"]] == ["PER"]
    answer = predict(client, "maybe John", 0.0, ["LOC"])
    assert answer["entities"] == [] and answer["message"] == "No entities found."


def test_bad_inputs_get_messages_not_errors(served):
    _, client = served
    answer = predict(client, "x" * (MAX_INPUT_CHARS + 1), 0.0, TYPES)
    assert answer["entities"] == [] and f"limit is {MAX_INPUT_CHARS:,}" in answer["message"]
    for text in ("", "   \n", "\x00\x07", "😀🙂 东京"):
        answer = predict(client, text, 0.0, TYPES)
        assert answer["entities"] == [] and answer["message"] in ("", "No entities found.")
    payload = "<img src=x onerror=alert(1)> Paris <script>alert(2)</script>"
    answer = predict(client, payload, 0.0, TYPES)
    assert answer["text"] == payload  # returned as text, untouched; the browser test checks it is not run
    assert texts_of(answer) == ["Paris"]


@contextlib.contextmanager
def first_batch_held(tagger):
    """Holds the first batch for a second so that the requests sent meanwhile queue up and are batched together;
    yields the list of batch sizes."""
    sizes: list[int] = []
    original = tagger.predict_batch

    def slow_first(texts, *a, **kw):
        sizes.append(len(texts))
        if len(sizes) == 1:
            time.sleep(1.0)
        return original(texts, *a, **kw)

    tagger.predict_batch = slow_first
    try:
        yield sizes
    finally:
        del tagger.predict_batch


def test_concurrent_requests_are_batched_and_answered_in_order(served):
    tagger, client = served
    with first_batch_held(tagger) as sizes:
        names = ["Paris", "Berlin", "London", "John", "Google", "Reuters", "German", "Smith"]
        jobs = [client.submit(f"{i} {name}", 0.0, TYPES, api_name="/predict") for i, name in enumerate(names)]
        results = [job.result(timeout=60) for job in jobs]
    for i, (name, answer) in enumerate(zip(names, results)):
        assert [(e["text"], e["start"]) for e in answer["entities"]] == [(name, len(str(i)) + 1)]
    assert sum(sizes) == len(names) and max(sizes) > 1


def raw_predict(url: str, body: str) -> list:
    """/predict over plain HTTP with a JSON body as given (gradio_client cannot send a lone surrogate escape)."""
    import httpx

    event = httpx.post(
        url + "gradio_api/call/predict", content=body, headers={"Content-Type": "application/json"}
    ).json()["event_id"]
    stream = httpx.get(url + f"gradio_api/call/predict/{event}", timeout=60).text
    return json.loads(stream.split("data: ", 1)[1].splitlines()[0])


def test_a_hostile_request_never_fails_the_requests_batched_with_it(served):
    tagger, client = served
    hostile = [
        ("Paris", 5, TYPES),
        ("Paris", None, TYPES),
        ("Paris", 0.0, ["NOPE"]),
        (42, 0.0, TYPES),
        ("!" * 3000, 0.0, TYPES),
        ("Paris", "high", TYPES),
    ]
    with first_batch_held(tagger) as sizes:
        first = client.submit("Berlin", 0.0, TYPES, api_name="/predict")
        time.sleep(0.3)
        jobs = []
        for i, bad in enumerate(hostile):
            jobs.append(("bad", client.submit(*bad, api_name="/predict")))
            jobs.append(("ok", client.submit(f"{i} John", 0.0, TYPES, api_name="/predict")))
        # A JSON "\\ud800" escape decodes to a lone surrogate, which the tokenizer cannot encode.
        surrogate = raw_predict(client.src, '{"data": ["Paris \\ud800", 0.0, ' + json.dumps(TYPES) + "]}")
        answers = [(kind, job.result(timeout=60)) for kind, job in jobs]
        assert texts_of(first.result(timeout=60)) == ["Berlin"]
    assert max(sizes) > 1  # hostile and valid requests did share batches
    for kind, answer in answers:
        if kind == "ok":
            assert texts_of(answer) == ["John"] and answer["message"] == ""
        else:
            assert answer["entities"] == [] and answer["message"].startswith("⚠️")
    assert surrogate[0]["entities"] == [] and "lone surrogate" in surrogate[0]["message"]


def test_a_request_lacking_values_gets_its_own_answer_and_fails_no_other(served):
    """Gradio zips a batch's values and refuses them all when one request sent too few: the guard answers that request
    alone (422), and the requests queued beside it are answered as usual. A threshold too large for a float (a
    401-digit integer) gets its message like any other bad value."""
    import httpx

    tagger, client = served
    url = client.src + "gradio_api/call/predict"
    with first_batch_held(tagger) as sizes:
        first = client.submit("Berlin", 0.0, TYPES, api_name="/predict")
        time.sleep(0.3)
        ok = [client.submit(f"{i} John", 0.0, TYPES, api_name="/predict") for i in range(3)]
        short = [httpx.post(url, json={"data": data}) for data in (["text"], [], ["a", 0.5])]
        huge = raw_predict(client.src, '{"data": ["Paris", 1' + "0" * 400 + ", " + json.dumps(TYPES) + "]}")
        answers = [job.result(timeout=60) for job in ok]
        assert texts_of(first.result(timeout=60)) == ["Berlin"]
    assert max(sizes) > 1
    assert [texts_of(a) for a in answers] == [["John"]] * 3
    for response in short:
        assert response.status_code == 422 and response.json()["error"].startswith("Expected 3 values in data")
    assert huge[0]["entities"] == [] and "minimum confidence must be a number from 0 to 1" in huge[0]["message"]


def test_uploads_and_oversized_requests_are_refused(served):
    import httpx

    _, client = served
    upload = httpx.post(client.src + "gradio_api/upload", files={"files": ("a.txt", b"x" * 1000)})
    assert upload.status_code == 403 and "no files" in upload.json()["error"]
    big = httpx.post(client.src + "gradio_api/call/predict", content=b'{"data": ["' + b"a" * 2_000_000 + b'"]}')
    assert big.status_code == 413


def test_the_public_api_offers_prediction_only(served):
    _, client = served
    assert set(client.view_api(return_format="dict")["named_endpoints"]) == {"/predict"}


def test_the_app_starts_and_serves_with_a_damaged_results_file(model_dir, tmp_path):
    model = str(tmp_path / "damaged")
    shutil.copytree(model_dir, model)
    Path(model, "eval_results.json").write_text('{"validation": {"overall": {"f1": 0.5')  # cut short
    demo, client = serve(app.build_demo(model))
    try:
        answer = predict(client, "Paris", 0.0, TYPES)
    finally:
        demo.close()
    assert texts_of(answer) == ["Paris"]
    # What the results tab shows on page load: the reason, not a traceback.
    load = next(f.fn for f in demo.fns.values() if getattr(f.fn, "__name__", "") == "results_outputs")
    summary = load(TYPES, ["wrong type"])[0]
    assert "eval_results.json of this model cannot be read" in summary


def test_unloadable_model_gives_a_page_with_the_reason(monkeypatch):
    monkeypatch.setenv("NER_MODEL", "no-such-user/no-such-ner-model")
    demo = app.build_demo()
    boxes = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "load-error"]
    assert len(boxes) == 1
    assert "no-such-user/no-such-ner-model" in boxes[0].value and "--model" in boxes[0].value


def test_main_without_a_model_explains_and_serves(tmp_path, monkeypatch, capsys):
    """`python app.py` with a model that cannot be loaded: one line on the console, the reason on the page, no
    traceback. (In-process: a subprocess would spend ~20 s of this 2-core machine importing torch and gradio.)"""
    import gradio as gr

    launched = []
    original = gr.Blocks.launch

    def launch(self, **kwargs):
        kwargs.update(prevent_thread_lock=True, quiet=True)
        launched.append(self)
        return original(self, **kwargs)

    monkeypatch.setattr(gr.Blocks, "launch", launch)
    monkeypatch.setenv("NER_MODEL", str(tmp_path / "missing-model"))
    app.main(["--host", "127.0.0.1"])
    try:
        err = capsys.readouterr().err
        assert err.startswith("error: Could not load the NER model") and "missing-model" in err
        assert "Traceback" not in err
        page = Client(launched[0].local_url, verbose=False).view_api(return_format="dict")
        assert page["named_endpoints"] == {}  # the error page serves no prediction endpoint
    finally:
        launched[0].close()
