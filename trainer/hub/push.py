"""Push a trained output directory to the Hub: an allow-list of files and the model card, retried where a retry can
help (the library behind `python -m trainer.push` and `--push-to-hub`).

The token comes from the `token` argument, HF_TOKEN or the cached login (`hf auth login`, read by
`huggingface_hub.get_token`). It is passed to `huggingface_hub` calls only: never logged, printed, put in a message or
written to disk. There is deliberately no --token flag, so a token never shows in shell history or the process list.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shlex
import time
from typing import Any, Callable, Optional, Sequence

from huggingface_hub import CommitOperationAdd, HfApi, ModelCard, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id

from trainer.hub.card import CardError, build_model_card
from trainer.outputs import (
    CARD_FILE,
    EVAL_RESULTS_FILE,
    MODEL_FILE_PATTERNS,
    RUN_COMPLETE_FILE,
    RUN_CONFIG_FILE,
    TRAIN_RESULTS_FILE,
    is_complete,
    learnt_nothing,
    predictions_file,
    read_results,
    scrub_local_paths,
)

logger = logging.getLogger(__name__)

# Predictions pushed with the model: the validation ones; other splits stay local (the test sentences are
# the benchmark's, and the train split is the data itself).
PUSHED_PREDICTION_SPLITS = ("validation",)
# Pushed files whose text may name local paths (data files, the base model's directory, checkpoints): scrubbed.
SCRUBBED_FILES = (RUN_CONFIG_FILE, TRAIN_RESULTS_FILE, EVAL_RESULTS_FILE, CARD_FILE)
# HTTP statuses worth another try: timeout, rate limit and server-side failures; other 4xx will not change.
TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}


class HubPushError(RuntimeError):
    """A push that did not complete. The message says why and gives the exact retry command; the local output
    directory has not been touched."""

    def __init__(self, reason: str, output_dir: str, hub_model_id: str, private: bool = False):
        self.reason = reason
        self.output_dir = output_dir
        self.hub_model_id = hub_model_id
        self.retry_command = retry_command(output_dir, hub_model_id, private)
        super().__init__(
            f"push of {output_dir} to the Hub repository {hub_model_id} failed: {reason}\n"
            f"The local output in {output_dir} is intact. Retry with:\n  {self.retry_command}"
        )


def retry_command(output_dir: str, hub_model_id: str, private: bool = False) -> str:
    cmd = ["python", "-m", "trainer.push", "--model", output_dir, "--hub-model-id", hub_model_id]
    return shlex.join(cmd + (["--hub-private-repo"] if private else []))


def files_to_upload(output_dir: str) -> list[str]:
    """The files pushed from disk: an allow-list of what a model repository needs (the model, its tokenizer and the
    results: trainer.outputs' patterns) plus the predictions of PUSHED_PREDICTION_SPLITS. Anything else in the
    directory (checkpoints, optimizer states, a stray `.env`, `nohup.out`, `wandb/`) stays local. The card is not
    read from disk: `push` uploads the one built for the repository."""
    allowed = (
        MODEL_FILE_PATTERNS
        + (RUN_CONFIG_FILE, TRAIN_RESULTS_FILE, EVAL_RESULTS_FILE)
        + tuple(predictions_file(s) for s in PUSHED_PREDICTION_SPLITS)
    )
    return sorted(
        n
        for n in os.listdir(output_dir)
        if os.path.isfile(os.path.join(output_dir, n)) and any(fnmatch.fnmatch(n, p) for p in allowed)
    )


def commit_operations(output_dir: str, files: Sequence[str], card: str) -> list[CommitOperationAdd]:
    """The commit: each file of `files` (with local paths scrubbed from those that may name them), and the card's
    text as README.md."""
    ops = [CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=scrub_local_paths(card).encode("utf-8"))]
    for name in files:
        path = os.path.join(output_dir, name)
        if name in SCRUBBED_FILES:
            with open(path, encoding="utf-8") as f:
                content: Any = scrub_local_paths(f.read()).encode("utf-8")
        else:
            content = path
        ops.append(CommitOperationAdd(path_in_repo=name, path_or_fileobj=content))
    return ops


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, OfflineModeIsEnabled):
        return False
    if isinstance(error, HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", None)
        return status in TRANSIENT_STATUS
    try:  # connection failures and timeouts: huggingface_hub's HTTP client raises httpx(2) transport errors
        import httpx2

        if isinstance(error, httpx2.TransportError):
            return True
    except ImportError:  # pragma: no cover - huggingface_hub always ships it
        pass
    return isinstance(error, (ConnectionError, TimeoutError))


def _reason(error: BaseException, hub_model_id: str) -> str:
    if isinstance(error, OfflineModeIsEnabled):
        return "offline mode is on (HF_HUB_OFFLINE=1); unset it where the Hub can be reached"
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status == 401:
        return "the Hub rejected the token (401); set HF_TOKEN to a valid write token or run `hf auth login`"
    if status == 403:
        return f"the token may not write to {hub_model_id} (403); use a write token with access to that namespace"
    if status == 404:
        return f"{hub_model_id} not found and could not be created (404); check the namespace"
    if _is_transient(error):
        return f"the Hub could not be reached or failed ({type(error).__name__}: {error})"
    return f"{type(error).__name__}: {error}"


def _scrub(text: str, token: Optional[str]) -> str:
    # Library messages do not contain the token, but a message that reaches users is scrubbed anyway.
    return text.replace(token, "***") if token else text


def push(
    output_dir: str,
    hub_model_id: str,
    private: bool = False,
    token: Optional[str] = None,
    api: Optional[HfApi] = None,
    *,
    card: Optional[ModelCard] = None,
    allow_unlearned: bool = False,
    retries: int = 3,
    backoff_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Push a completed output directory to the Hub model repository `hub_model_id`: `create_repo(exist_ok=True)`,
    then one commit of the allow-listed files (`files_to_upload`) and the model card built for that repository
    (`card`, else built here from the directory), local paths scrubbed from the results, config and card.

    Token: `token`, else `HF_TOKEN` or the cached login. Transient failures (network, 429, 5xx) are retried up to
    `retries` times with exponential backoff. Returns the commit URL. Raises HubPushError (with the retry command) on
    any failure. Nothing in the output directory is written, whether the push succeeds or fails: the card to upload
    lives in memory. A model that learnt nothing (trainer.outputs.learnt_nothing) is refused unless
    `allow_unlearned`.
    """
    try:
        validate_repo_id(hub_model_id)
    except HFValidationError as e:
        raise HubPushError(f"invalid repository id: {e}", output_dir, hub_model_id, private) from None
    if not os.path.isdir(output_dir):
        raise HubPushError(f"{output_dir} is not a directory", output_dir, hub_model_id, private)
    if not is_complete(output_dir):
        raise HubPushError(
            f"the run in {output_dir} did not complete (no {RUN_COMPLETE_FILE}: interrupted, failed or "
            f"still running), so its model and results may not belong together; finish it with "
            f"--resume first",
            output_dir,
            hub_model_id,
            private,
        )
    nothing = learnt_nothing(read_results(output_dir) or {})
    if nothing and not allow_unlearned:
        reason = f"{nothing} Not published; pass --push-unlearned to push it anyway"
        raise HubPushError(reason, output_dir, hub_model_id, private)
    if token is None:
        try:
            token = get_token()
        except Exception as e:  # e.g. a failed OIDC exchange in CI
            raise HubPushError(
                f"no token could be obtained ({type(e).__name__})", output_dir, hub_model_id, private
            ) from None
    if not token:
        raise HubPushError(
            "no Hugging Face token: set HF_TOKEN (a write token) or run `hf auth login`",
            output_dir,
            hub_model_id,
            private,
        )

    try:
        card = card or build_model_card(output_dir, hub_model_id)
    except (CardError, OSError) as e:
        raise HubPushError(f"the model card could not be built: {e}", output_dir, hub_model_id, private) from e

    files = files_to_upload(output_dir)
    if "config.json" not in files or not any(f.endswith(".safetensors") for f in files):
        raise HubPushError(
            "no model weights and config.json to push (was the best model saved?)", output_dir, hub_model_id, private
        )

    api = api or HfApi()
    size_mb = sum(os.path.getsize(os.path.join(output_dir, f)) for f in files) / 2**20
    logger.info("Pushing %d files (%.1f MB) from %s to %s", len(files), size_mb, output_dir, hub_model_id)
    attempt = 0
    while True:
        attempt += 1
        try:
            api.create_repo(hub_model_id, token=token, private=private, repo_type="model", exist_ok=True)
            commit = api.create_commit(
                repo_id=hub_model_id,
                operations=commit_operations(output_dir, files, str(card)),
                token=token,
                repo_type="model",
                commit_message=f"Upload {os.path.basename(os.path.abspath(output_dir))} with results and model card",
            )
            break
        except Exception as e:
            if _is_transient(e) and attempt <= retries:
                wait = backoff_s * 2 ** (attempt - 1)
                logger.warning(
                    "Push attempt %d of %d failed (%s); retrying in %.1f s",
                    attempt,
                    retries + 1,
                    _scrub(_reason(e, hub_model_id), token),
                    wait,
                )
                sleep(wait)
                continue
            tries = f" after {attempt} attempts" if attempt > 1 else ""
            raise HubPushError(
                _scrub(_reason(e, hub_model_id), token) + tries, output_dir, hub_model_id, private
            ) from e
    url = getattr(commit, "commit_url", None) or str(commit)
    logger.info("Pushed to %s", url)
    return url
