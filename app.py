"""The Space: highlight entities in any text, and browse the model's validation results and errors.

    python app.py [--model DIR_OR_HUB_ID] [--host 127.0.0.1] [--port 7860]

The model is --model, else $NER_MODEL, else DEFAULT_MODEL. Only wiring lives here: prediction is
trainer.inference.tagger, everything shown in the results tab comes from trainer.results_view.
"""

from __future__ import annotations

import os

# Before gradio is imported: it reads these at import time, and otherwise calls home.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import json
import sys
from dataclasses import dataclass
from typing import Any, Optional

import gradio as gr
from starlette.middleware import Middleware

from trainer import results_view as rv
from trainer.cli import field_help, parse
from trainer.inference.tagger import Entity, InputError, ModelLoadError, NerTagger, keep_entities

# The course's CoNLL-2003 model, until the project publishes its own.
DEFAULT_MODEL = "huggingface-course/bert-finetuned-ner"
EVERYDAY_EXAMPLES = [
    "My name is Sarah Jones, I work at the World Health Organization in Geneva and I grew up in Nairobi.",
    "Apple and Microsoft both beat expectations on Thursday, while Tesla shares fell 4% on the Nasdaq.",
    "Lionel Messi scored twice as Inter Miami beat the New York Red Bulls at the Red Bull Arena.",
]
MAX_BATCH = 16  # requests the queue hands to one forward pass


def model_source(model: Optional[str] = None) -> str:
    return model or os.environ.get("NER_MODEL") or DEFAULT_MODEL


def load_tagger(source: str, backend: Optional[str] = None) -> NerTagger:
    """The Space's tagger: the fast CPU backend measured by bench/inference_speed.py unless --backend or
    $NER_BACKEND names another (trainer/inference/backends.py; docs/inference.md)."""
    return NerTagger.from_pretrained(source, backend=backend or os.environ.get("NER_BACKEND") or "auto")


# The largest request body the Space reads: a text at its 20,000-character limit is under 150 KB of JSON even with
# every character escaped (`\uXXXX`), so anything larger can only be refused.
MAX_BODY_BYTES = 1_000_000


class RequestGuard:
    """ASGI middleware in front of Gradio, for what Gradio would let one request do to others or to the server.

    - A call of a batched event with fewer values than it has inputs (`{"data": ["text"]}`) would fail every request
      batched with it (Gradio zips the batch's values, then refuses them all): it gets its own 422 answer instead.
    - Uploads: the app has no file input, so `/gradio_api/upload` is refused (Gradio would keep any file it is sent).
    - A request body over MAX_BODY_BYTES is refused before it is read whole (413).
    """

    def __init__(self, app: Any, blocks: gr.Blocks) -> None:
        self.app, self.blocks = app, blocks

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path.endswith("/gradio_api/upload"):
            return await self._refuse(send, 403, "This app takes no files.")
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY_BYTES:
                return await self._refuse(send, 413, f"The request is larger than {MAX_BODY_BYTES:,} bytes.")
        if problem := self._short_call(path, body):
            return await self._refuse(send, 422, problem)
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)

    def _short_call(self, path: str, body: bytes) -> Optional[str]:
        """Why a call of a batched event lacks values, or None."""
        if not (path.endswith("/gradio_api/queue/join") or "/gradio_api/call/" in path):
            return None
        try:
            request = json.loads(body)
        except ValueError:
            return None  # Gradio answers it on its own: nothing is batched yet
        if not isinstance(request, dict):
            return None
        name = path.rsplit("/", 1)[-1]
        fn = next((f for f in self.blocks.fns.values() if (f.api_name == name if "/call/" in path
                   else f._id == request.get("fn_index"))), None)  # fmt: skip
        data = request.get("data")
        if fn is None or not fn.batch or (isinstance(data, list) and len(data) >= len(fn.inputs)):
            return None
        got = len(data) if isinstance(data, list) else type(data).__name__
        return f"Expected {len(fn.inputs)} values in data ({', '.join(fn.input_parameter_names or [])}), got {got}."

    @staticmethod
    async def _refuse(send: Any, status: int, message: str) -> None:
        body = json.dumps({"error": message}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


# Gradio breaks highlighted text anywhere (`word-break: break-all`), cutting words at line ends ("champion / ship"):
# lines break between words, and inside a word only when it is longer than the line.
# Table headers too: "score" wrapped letter by letter.
CSS = (
    "#highlight .token-container, #highlight .token { word-break: normal; overflow-wrap: break-word; }"
    " #entity-table th *, #per-entity th *, #errors th * { word-break: normal; overflow-wrap: normal; }"
)


class SpaceBlocks(gr.Blocks):
    """The app's Blocks, launched behind its RequestGuard and with its CSS however it is launched (`main`, tests, a
    Space)."""

    def launch(self, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("css", CSS)
        app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
        app_kwargs["middleware"] = [*app_kwargs.get("middleware", []), Middleware(RequestGuard, blocks=self)]
        return super().launch(*args, app_kwargs=app_kwargs, **kwargs)


def build_demo(
    model: Optional[str] = None, tagger: Optional[NerTagger] = None, results: Optional[rv.ModelResults] = None
) -> gr.Blocks:
    """The app for `model` (see model_source); a page with the loading error when the model cannot be loaded."""
    source = model_source(model)
    if tagger is None:
        try:
            tagger = load_tagger(source)
        except ModelLoadError as exc:
            return error_demo(rv.scrub_local_paths(str(exc)))
    results = results or rv.ModelResults(source)
    colors = rv.entity_colors(tagger.entity_types)
    view: dict[str, Any] = {"record": results.results(), "predictions": results.predictions()}

    def predict(text: list[str], threshold: list[float], types: list[list[str]]) -> list[list[dict[str, Any]]]:
        """The public API, batched by the queue (the parameter names are the API's): one answer per request, {"text",
        "entities": [{"type", "text", "start", "end", "score"}] (character offsets into "text", end exclusive),
        "message": "" | "No entities found." | why the request was refused}. Each request is checked on its own, so
        a bad one gets its message and never fails the others; the valid requests' windows go through the model
        together."""
        checked: list[Any] = []  # per request: (text, threshold, types) to predict, or an error message
        for item, minimum, keep in zip(text, threshold, types):
            try:
                checked.append((tagger.check_text(item), *tagger.check_options(minimum, keep)))
            except InputError as exc:
                checked.append(f"⚠️ {exc}")
        valid = [c for c in checked if not isinstance(c, str)]
        try:
            found = tagger.predict_batch([c[0] for c in valid], checked=True)
        except Exception:
            found = [rv.predict_or_message(tagger, c[0]) for c in valid]
        entities = iter(found)
        answers = []
        for c in checked:
            if isinstance(c, str):
                answers.append({"text": "", "entities": [], "message": c})
                continue
            item, minimum, keep = c
            ents = next(entities)
            if isinstance(ents, str):
                answers.append({"text": item, "entities": [], "message": ents})
                continue
            ents = [e.as_dict() for e in keep_entities(ents, minimum, keep)]
            answers.append(
                {"text": item, "entities": ents, "message": "No entities found." if item.strip() and not ents else ""}
            )
        return [answers]

    def show(answer: dict[str, Any]) -> tuple:
        """The page's view of one answer of `predict`: the highlighted text, the entity table and the message."""
        ents = [Entity(**e) for e in answer["entities"]]
        return rv.highlighted(answer["text"], ents), rv.entity_rows(ents), answer["message"]

    examples = rv.example_sentences(view["predictions"]) + EVERYDAY_EXAMPLES

    with SpaceBlocks(title="Named entity recognition") as demo:
        gr.Markdown(
            f"# Named entity recognition\nModel: `{rv.shown_name(source)}` · entity types: "
            f"{', '.join(tagger.entity_types)} · texts up to {tagger.max_chars:,} characters and "
            f"{tagger.max_subtokens:,} sub-tokens"
        )
        with gr.Tabs():
            with gr.Tab("Try it", id="try"):
                with gr.Row():
                    with gr.Column(scale=3):
                        text = gr.Textbox(
                            label="Text", lines=5, placeholder="Type or paste English text", elem_id="input-text"
                        )
                        with gr.Row():
                            threshold = gr.Slider(0.0, 1.0, value=0.0, step=0.05, label="Minimum confidence")
                            types = gr.CheckboxGroup(
                                tagger.entity_types, value=tagger.entity_types, label="Entity types"
                            )
                        run = gr.Button("Find entities", variant="primary", elem_id="run")
                        gr.Examples([[e] for e in examples], inputs=[text], label="Examples")
                    with gr.Column(scale=3):
                        status = gr.Markdown(label="message", elem_id="status")
                        highlight = gr.HighlightedText(
                            label="Entities",
                            color_map=colors,
                            show_legend=True,
                            combine_adjacent=False,
                            elem_id="highlight",
                        )
                        table = gr.Dataframe(
                            headers=rv.ENTITY_COLUMNS,
                            datatype=["str", "str", "number", "number", "number"],
                            column_widths=["14%", "38%", "16%", "16%", "16%"],
                            interactive=False,
                            wrap=True,
                            label="Entity list",
                            elem_id="entity-table",
                        )
                        with gr.Accordion("JSON", open=False):
                            answer = gr.JSON(label="The API's answer (character offsets, end exclusive)")
                # The button and the API run the same batched `predict`, whose one answer per request is all an API
                # caller gets (every output costs the server and the clients per request); the page then renders it
                # (`show`, outside the queue: no model). preprocess=False: the components' own checks (a slider's
                # bounds, a checkbox group's choices) raise for the whole batch, so one bad request would fail every
                # request queued with it; `predict` checks each request's raw values itself.
                run.click(
                    predict,
                    [text, threshold, types],
                    [answer],
                    api_name="predict",
                    batch=True,
                    max_batch_size=MAX_BATCH,
                    concurrency_limit=1,
                    concurrency_id="model",
                    preprocess=False,
                ).success(show, [answer], [highlight, table, status], api_visibility="private", queue=False)

            with gr.Tab("Validation results", id="results"):
                summary = gr.Markdown(label="summary", elem_id="summary")
                with gr.Row():
                    compute = gr.Button("Compute validation results", elem_id="compute")
                    compute_status = gr.Markdown(label="compute message")
                per_entity = gr.Dataframe(
                    headers=rv.PER_ENTITY_COLUMNS, interactive=False, label="Per entity type", elem_id="per-entity"
                )
                chart = gr.HTML(label="Precision, recall and F1 per entity type", elem_id="chart")
                gr.Markdown("### Errors on validation sentences")
                with gr.Row():
                    err_types = gr.CheckboxGroup(
                        tagger.entity_types, value=tagger.entity_types, label="Entity type (gold or predicted)"
                    )
                    err_kinds = gr.CheckboxGroup(rv.ERROR_KINDS, value=rv.ERROR_KINDS, label="Error kind")
                errors = gr.Dataframe(
                    headers=rv.ERROR_COLUMNS,
                    column_widths=["8%", "14%", "15%", "15%", "15%", "33%"],
                    interactive=False,
                    wrap=True,
                    label="Errors (select a row to compare)",
                    elem_id="errors",
                )
                with gr.Row():
                    gold_view = gr.HighlightedText(label="Gold", color_map=colors, show_legend=True)
                    pred_view = gr.HighlightedText(label="Predicted", color_map=colors, show_legend=True)

        def results_outputs(types: list[str], kinds: list[str]) -> tuple:
            record = view["record"]
            if record is None:
                note = f" ({results.note})" if results.note else ""
                return (
                    f"This model has no validation results{note}. The button computes them in memory on the "
                    "model's own validation data (a Hub dataset, or a file shipped in the model repository).",
                    gr.update(visible=True),
                    [],
                    "",
                ) + browse(types, kinds)
            warning = f"\n\n⚠️ {results.note}" if results.note else ""
            return (
                rv.summary_markdown(record, source) + warning,
                gr.update(visible=False),
                rv.per_entity_rows(record),
                rv.chart_svg(record),
            ) + browse(types, kinds)

        def browse(types: list[str], kinds: list[str], index: int = 0) -> tuple:
            records = rv.error_rows(view["predictions"], types or [], kinds or [])
            if not records:
                return [], None, None
            r = records[min(index, len(records) - 1)]
            return (
                rv.error_table_rows(records),
                rv.highlighted_words(r["tokens"], r["gold_tags"]),
                rv.highlighted_words(r["tokens"], r["pred_tags"]),
            )

        def select(types: list[str], kinds: list[str], evt: gr.SelectData) -> tuple:
            return browse(types, kinds, evt.index[0])[1:]

        def compute_results(types: list[str], kinds: list[str], progress=gr.Progress()) -> tuple:
            try:
                view["record"] = results.compute(tagger, progress=lambda f, d: progress(f, desc=d))
            except Exception as exc:
                return (f"⚠️ {exc}",) + results_outputs(types, kinds)
            view["predictions"] = results.predictions()
            return ("Computed.",) + results_outputs(types, kinds)

        res_outputs = [summary, compute, per_entity, chart, errors, gold_view, pred_view]
        demo.load(results_outputs, [err_types, err_kinds], res_outputs, api_visibility="private")
        # Not part of the public API (only prediction is), and not in the prediction slot: results are computed once
        # per process, in memory, one computation at a time.
        compute.click(
            compute_results,
            [err_types, err_kinds],
            [compute_status] + res_outputs,
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="results",
        )
        for box in (err_types, err_kinds):
            box.change(browse, [err_types, err_kinds], [errors, gold_view, pred_view], api_visibility="private")
        errors.select(select, [err_types, err_kinds], [gold_view, pred_view], api_visibility="private")
    # One model forward at a time (the CPU is shared anyway); batching above packs queued requests together.
    return demo.queue(default_concurrency_limit=1)


def error_demo(message: str) -> gr.Blocks:
    """What the page shows when no model could be loaded: the reason and how to fix it, no traceback."""
    with SpaceBlocks(title="Named entity recognition: no model") as demo:
        gr.Markdown("# Named entity recognition\n## The model could not be loaded")
        gr.Textbox(message, label="What happened", lines=4, interactive=False, elem_id="load-error")
    return demo


@dataclass
class AppArgs:
    model: Optional[str] = field_help(
        f"A trained output directory or Hub model id (default: $NER_MODEL, else {DEFAULT_MODEL}).", default=None
    )
    host: Optional[str] = field_help("Address to listen on (default: Gradio's, 127.0.0.1).", default=None)
    port: Optional[int] = field_help("Port (default: Gradio's, 7860).", default=None)
    backend: Optional[str] = field_help(
        "Inference backend (default: $NER_BACKEND, else auto; docs/inference.md).", default=None
    )


def main(argv: Optional[list[str]] = None) -> None:
    args = parse(AppArgs, sys.argv[1:] if argv is None else argv, "python app.py", __doc__)
    source = model_source(args.model)
    try:
        demo = build_demo(source, load_tagger(source, args.backend))
    except ModelLoadError as exc:
        # Said once on the console (the Space's log) and on the page; the server still starts, so a Space shows why.
        print(f"error: {exc}", file=sys.stderr)
        demo = error_demo(rv.scrub_local_paths(str(exc)))
    demo.launch(server_name=args.host, server_port=args.port, theme=gr.themes.Soft())


if __name__ == "__main__":
    main()
