"""The Space under load, side by side in one run: our app.py, the app a course reader would write (pipeline +
HighlightedText, default queue: ../shared/reference/space_load_anchor.py's), and an app that only echoes (the cost of
the queue and the clients alone, the ceiling for any app on this machine). Each app runs in its own
process on 127.0.0.1 and is driven by C concurrent clients for S seconds, with one sentence and then one paragraph per
request, after an untimed warm-up, in R rounds that interleave the apps (ratios: medians of the per-round ratios).
Hostile requests (a lone surrogate, a threshold of 5 or null, an unknown type, a text of 20,000 `!`) from extra clients
are mixed into a third run of ours: every valid request must still get its entities, every hostile one an answer with
a message.

The clients are kept-alive raw HTTP (PredictClient: http.client, one persistent HTTP/1.1 connection per client thread,
reconnected when the server closes it), calling Gradio's own API: `POST /gradio_api/call/predict` with `{"data":
[...]}` (ours: text, threshold, types; the course and echo apps: the text), then `GET
/gradio_api/call/predict/<event_id>`, whose server-sent events are read to the end: `event: complete` and its `data`
line is the answer; `event: error`, a non-2xx status or a stream without `complete` is a failed request. They are not
gradio_client's Client (the anchor's clients): its predict opens a new HTTP client for each call and cost 60-80 ms of
this process's CPU per request on 2 cores, so the clients, not the servers, capped the rate measured; the anchor's own
printed rates are therefore not comparable with these.

Each load also records the CPU time it cost, per request: the app's server process, and this process (the clients,
the load generator, which shares the machine with the app under test here as no Space's visitors do). After the loads,
with the servers stopped, the model alone is timed in this process on paragraphs: the course app's pipeline one
paragraph per call (its queue runs one request at a time), and our app's tagger on a batch of MAX_BATCH paragraphs
(its queue batches them), interleaved over the rounds. Their ratio is what ours could serve over the course app if
serving cost nothing: the ceiling of the paragraph ratio with this model on this CPU.

  python bench/space_load.py --model models/minilm-conll --result bench/results/space_load.json [--clients 16]
      [--rounds 3] [--seconds 30] [--warmup-seconds 5] [--model-seconds 10]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Optional
from urllib.parse import urlsplit

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from machine import cpu_info  # noqa: E402

SENTENCE = (
    "Germany's representative to the European Union's veterinary committee Werner Zwingmann said on "
    "Wednesday consumers should buy sheepmeat from countries other than Britain."
)
# About 1,500 characters: a news paragraph with entities of every type.
PARAGRAPH = " ".join(
    [
        "The European Commission said on Thursday it disagreed with German advice to consumers to shun British lamb",
        "until scientists determine whether mad cow disease can be transmitted to sheep.",
        "Germany's representative to the European Union's veterinary committee Werner Zwingmann said on Wednesday",
        "consumers should buy sheepmeat from countries other than Britain until the scientific advice was clearer.",
        "We do n't support any such recommendation because we do n't see any grounds for it, the Commission's chief",
        "spokesman Nikolaus van der Pas told a news briefing in Brussels.",
        "He said further scientific study was required and if it was found that action was needed it should be taken",
        "by the European Union.",
        "He said a proposal last month by EU Farm Commissioner Franz Fischler to ban sheep brains, spleens and spinal",
        "cords from the human and animal food chains was a highly specific and precautionary move to protect human",
        "health.",
        "Fischler proposed EU-wide measures after reports from Britain and France that under laboratory conditions",
        "sheep could contract Bovine Spongiform Encephalopathy (BSE) -- mad cow disease.",
        "But Fischler agreed to review his proposal after the EU's standing veterinary committee, national animal",
        "health officials, questioned if such action was justified as there was only a slight risk to human health.",
        "Spanish Farm Minister Loyola de Palacio had earlier accused Fischler at an EU farm ministers' meeting of",
        "causing unjustified alarm through dangerous generalisation.",
    ]
)
# json.dumps writes the lone surrogate as the escape `\ud800`, as a browser's JSON.stringify would.
HOSTILE = [
    ("Paris \ud800", 0.0, "all"),
    ("Paris", 5, "all"),
    ("Paris", None, "all"),
    ("Paris", 0.0, ["NOPE"]),
    ("!" * 20_000, 0.0, "all"),
]


# --- the servers (run as `space_load.py --serve KIND --model M --port P`) ------------------------------------------


def serve(kind: str, model: str, port: int) -> None:
    import gradio as gr

    if kind == "ours":
        import app

        demo = app.build_demo(model)
    elif kind == "course":
        from transformers import pipeline

        ner = pipeline("token-classification", model=model, aggregation_strategy="simple", device=-1)
        demo = gr.Interface(
            lambda text: {"text": text, "entities": ner(text)}, gr.Textbox(), gr.HighlightedText(), api_name="predict"
        )
    else:
        demo = gr.Interface(
            lambda text: {"text": text, "entities": []}, gr.Textbox(), gr.HighlightedText(), api_name="predict"
        )
    demo.launch(server_name="127.0.0.1", server_port=port, quiet=True)


def cpu_seconds(pid: Optional[int] = None) -> Optional[float]:
    """User + system CPU seconds of process `pid` (all its threads; Linux /proc), or of this process when None."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # the name in parentheses may hold spaces
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime: fields 14 and 15


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the clients -----------------------------------------------------------------------------------------------------


class RequestFailed(Exception):
    """A request the server answered with a non-2xx status, `event: error`, or a stream without `complete`."""


class _Connection(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        # http.client sends a request's headers and its body in two writes: without TCP_NODELAY the body would wait
        # for the server's delayed ACK of the headers (Nagle), up to 40 ms a POST on Linux.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class PredictClient:
    """One load client: a kept-alive HTTP/1.1 connection (http.client, for one thread) to an app's /predict API.

    A call is Gradio's two requests on that connection: `POST /gradio_api/call/predict` with `{"data": [...]}`, which
    answers `{"event_id"}`, then `GET /gradio_api/call/predict/<event_id>`, whose server-sent events (chunked; the
    server ends the stream after `complete` or `error`) are read to the end. When the server has closed the kept
    connection (its keep-alive timeout, or `Connection: close`), http.client opens a new one for the next request;
    a request that finds the idle connection closed before any answer is sent once more on a new one."""

    def __init__(self, url: str, timeout: float = 120) -> None:
        parts = urlsplit(url)
        self.prefix = parts.path.rstrip("/")
        self.conn = _Connection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)

    def close(self) -> None:
        self.conn.close()

    def _exchange(self, method: str, path: str, body: Optional[bytes] = None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in range(2):
            reused = self.conn.sock is not None
            try:
                self.conn.request(method, self.prefix + path, body=body, headers=headers)
                response = self.conn.getresponse()
            except ConnectionError:
                self.conn.close()
                if reused and attempt == 0:  # the server closed the idle connection: nothing was answered
                    continue
                raise
            try:
                return response.status, response.read()
            except Exception:
                self.conn.close()
                raise
        raise AssertionError("unreachable")

    def get(self, path: str) -> int:
        """The status of `GET path` (the body read and dropped)."""
        return self._exchange("GET", path)[0]

    def predict(self, data: list) -> list:
        """The outputs (`data` of `event: complete`) of one call of /predict with the input values `data`."""
        status, body = self._exchange(
            "POST", "/gradio_api/call/predict", json.dumps({"data": data}, allow_nan=False).encode()
        )
        if not 200 <= status < 300:
            raise RequestFailed(f"POST {status}: {body[:200]!r}")
        event_id = json.loads(body)["event_id"]
        status, stream = self._exchange("GET", f"/gradio_api/call/predict/{event_id}")
        if not 200 <= status < 300:
            raise RequestFailed(f"GET {status}: {stream[:200]!r}")
        event = None
        for line in stream.decode("utf-8").splitlines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                if event == "error":
                    raise RequestFailed(f"event: error: {line[5:].strip()[:200]}")
                return json.loads(line[5:])
        raise RequestFailed(f"no complete event: {stream[-200:]!r}")


def start(kind: str, model: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind, "--model", model, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    for _ in range(240):
        if proc.poll() is not None:
            raise RuntimeError(f"the {kind} app exited with {proc.returncode}")
        client = PredictClient(url, timeout=10)
        try:
            if client.get("/gradio_api/info") == 200:  # the API (and its /predict) is served
                return proc, url
        except OSError:
            pass
        finally:
            client.close()
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"the {kind} app did not start")


# --- the load --------------------------------------------------------------------------------------------------------


def drive(
    kind: str,
    url: str,
    text: str,
    clients: int,
    seconds: float,
    types: list[str],
    n_hostile: int = 0,
    pid: Optional[int] = None,
) -> dict:
    ours = kind == "ours"

    def inputs(payload: tuple) -> list:
        """The values of one /predict call: ours takes (text, threshold, types), the course and echo apps the text."""
        t, threshold, keep = payload
        return [t, threshold, types if keep == "all" else keep] if ours else [t]

    lat: list[float] = []
    errors, hostile_answered, hostile_failed = [0], [0], [0]
    wrong = [0]
    stop = time.time() + seconds

    def worker(hostile: bool) -> None:
        client = PredictClient(url)
        i = 0
        try:
            while time.time() < stop:
                payload = HOSTILE[i % len(HOSTILE)] if hostile else (text, 0.0, "all")
                i += 1
                t0 = time.perf_counter()
                try:
                    out = client.predict(inputs(payload))[0]  # the one output: ours {text, entities, message}
                except Exception:
                    (hostile_failed if hostile else errors)[0] += 1
                    continue
                if hostile:
                    if isinstance(out, dict) and out["message"].startswith("⚠️") and not out["entities"]:
                        hostile_answered[0] += 1
                    else:
                        hostile_failed[0] += 1
                    continue
                lat.append(time.perf_counter() - t0)
                if ours and not out["entities"]:  # every valid text here has entities
                    wrong[0] += 1
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(i < n_hostile,)) for i in range(clients + n_hostile)]
    server0, clients0 = cpu_seconds(pid) if pid else None, cpu_seconds()
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.time() - t0
    server1, clients1 = cpu_seconds(pid) if pid else None, cpu_seconds()
    calls = max(1, len(lat) + errors[0] + hostile_answered[0] + hostile_failed[0])
    lat.sort()
    res = {
        "clients": clients,
        "seconds": round(wall, 1),
        "requests": len(lat),
        "req_per_s": len(lat) / wall,
        "p50_ms": 1e3 * lat[len(lat) // 2] if lat else None,
        "p95_ms": 1e3 * lat[int(len(lat) * 0.95)] if lat else None,
        "errors": errors[0],
        # CPU per call (valid and hostile): the app's process, and the clients in this process.
        "server_cpu_ms_per_request": (
            1e3 * (server1 - server0) / calls if server0 is not None and server1 is not None else None
        ),
        "clients_cpu_ms_per_request": 1e3 * (clients1 - clients0) / calls,
    }
    if n_hostile:
        res.update(
            hostile_clients=n_hostile,
            hostile_answered_with_a_message=hostile_answered[0],
            hostile_errors=hostile_failed[0],
            valid_without_entities=wrong[0],
        )
    return res


def model_only(model: str, rounds: int, seconds: float = 10) -> dict:
    """ms per paragraph of the model alone, in this process: the course app's pipeline one paragraph per call, and
    our app's tagger (app.load_tagger: the same backend and threads) on batches of app.MAX_BATCH paragraphs; each
    for about `seconds` per round, the two interleaved over `rounds` (the order swapped every round)."""
    from transformers import pipeline

    import app

    ner = pipeline("token-classification", model=model, aggregation_strategy="simple", device=-1)
    tagger = app.load_tagger(model)
    batch = [PARAGRAPH] * app.MAX_BATCH
    methods = {"course": (lambda: ner(PARAGRAPH), 1), "ours": (lambda: tagger.predict_batch(batch), len(batch))}
    for fn, _ in methods.values():
        fn()
    per_round: list[dict] = []
    for r in range(rounds):
        ms: dict = {}
        for name in sorted(methods, reverse=r % 2 == 1):
            fn, n = methods[name]
            done, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                fn()
                done += n
            ms[name] = 1e3 * (time.perf_counter() - t0) / done
        per_round.append(
            {
                "course_ms_per_paragraph": ms["course"],
                "ours_ms_per_paragraph": ms["ours"],
                "ours_over_course": ms["course"] / ms["ours"],
            }
        )
        print(
            f"model only, round {r + 1}: course {ms['course']:.1f} ms/paragraph, ours {ms['ours']:.1f} "
            f"({ms['course'] / ms['ours']:.2f}x)",
            flush=True,
        )
    return {"rounds": per_round, "ours_over_course": statistics.median(x["ours_over_course"] for x in per_round)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="a trained output directory")
    ap.add_argument("--result", help="JSON file to write")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--hostile-clients", type=int, default=4, help="extra clients sending only hostile requests")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every app and load, interleaved")
    ap.add_argument("--warmup-seconds", type=float, default=5, help="untimed load on each app first")
    ap.add_argument("--model-seconds", type=float, default=10, help="the model alone: seconds per method and round")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve, args.model, args.port)
        return

    from transformers import AutoConfig

    types = sorted(
        {label.split("-", 1)[1] for label in AutoConfig.from_pretrained(args.model).id2label.values() if "-" in label}
    )
    # All four servers stay up for the whole run (an idle one sleeps); the loads are interleaved round by round, so
    # that the machine's drift from minute to minute (±10% here) falls on every app alike.
    servers: dict = {}
    rounds: list[dict] = []
    try:
        for kind in ("echo", "course", "ours"):
            servers[kind] = start(kind, args.model)
        for kind, (_, url) in servers.items():  # first requests (lazy imports, first allocations) are not timed
            for text in (SENTENCE, PARAGRAPH):
                drive(kind, url, text, args.clients, args.warmup_seconds, types)
        for r in range(args.rounds):
            runs: dict = {}
            for kind, (_, url) in servers.items():
                plan = [("sentence", SENTENCE, 0), ("paragraph", PARAGRAPH, 0)]
                if kind == "ours":  # the same load again with hostile clients on top: valid requests must not fail
                    plan.append(("sentence+hostile", SENTENCE, args.hostile_clients))
                for name, text, hostile in plan:
                    runs[f"{kind}/{name}"] = x = drive(
                        kind, url, text, args.clients, args.seconds, types, hostile, servers[kind][0].pid
                    )
                    print(
                        f"round {r + 1} {kind:6s} {name:16s} {x['req_per_s']:6.1f} req/s  p50 {x['p50_ms']:7.0f} ms"
                        f"  p95 {x['p95_ms']:7.0f} ms  errors {x['errors']}  cpu ms/request: server "
                        f"{x['server_cpu_ms_per_request'] or float('nan'):.0f}, clients "
                        f"{x['clients_cpu_ms_per_request']:.0f}"
                        + (
                            f"  hostile answered {x['hostile_answered_with_a_message']}, failed {x['hostile_errors']}"
                            if hostile
                            else ""
                        ),
                        flush=True,
                    )
            rounds.append(runs)
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)
    alone = model_only(args.model, args.rounds, args.model_seconds)

    def ratios(runs: dict) -> dict:
        def ratio(a: str, b: str, key: str = "req_per_s") -> float:
            return runs[a][key] / runs[b][key]

        return {
            "paragraph_req_per_s_ours_over_course": ratio("ours/paragraph", "course/paragraph"),
            "paragraph_p95_ours_over_course": ratio("ours/paragraph", "course/paragraph", "p95_ms"),
            "sentence_req_per_s_ours_over_echo": ratio("ours/sentence", "echo/sentence"),
            "sentence_req_per_s_ours_over_course": ratio("ours/sentence", "course/sentence"),
            # The ceiling: what an app that runs no model at all serves on paragraphs, here, with these clients.
            "paragraph_req_per_s_echo_over_course": ratio("echo/paragraph", "course/paragraph"),
            "paragraph_req_per_s_ours_over_echo": ratio("ours/paragraph", "echo/paragraph"),
        }

    per_round = [ratios(runs) for runs in rounds]
    medians = {k: statistics.median(r[k] for r in per_round) for k in per_round[0]}
    # The ceiling of paragraph_req_per_s_ours_over_course with this model on this CPU: serving at no cost.
    medians["paragraph_model_only_ours_over_course"] = alone["ours_over_course"]
    res = {
        "what": "each app in its own process on 127.0.0.1, kept-alive raw HTTP clients (http.client, one connection "
        "per client thread) in this process; the loads interleaved over rounds; ratios are the medians of per-round "
        "ratios; hostile requests mixed into ours from extra clients; model_only: the model alone in this process, "
        "the servers stopped",
        "model": os.path.basename(os.path.normpath(args.model)),
        "paragraph_chars": len(PARAGRAPH),
        "model_window": AutoConfig.from_pretrained(args.model).to_dict().get("ner_window"),
        "rounds": rounds,
        "ratios_per_round": per_round,
        "model_only": alone,
        "ratios": medians,
        "errors_for_valid_requests": sum(x["errors"] for runs in rounds for x in runs.values()),
        "hostile_answered_with_a_message": sum(
            runs["ours/sentence+hostile"]["hostile_answered_with_a_message"] for runs in rounds
        ),
        "hostile_errors": sum(runs["ours/sentence+hostile"]["hostile_errors"] for runs in rounds),
        "cpu": cpu_info(),
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(json.dumps(medians, indent=2))
    if args.result:
        with open(args.result, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
