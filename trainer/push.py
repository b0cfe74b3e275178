"""`python -m trainer.push`: push a trained output directory to the Hub, with its model card, results and the
validation predictions; the retry path of a failed `python -m trainer ... --push-to-hub`.

  python -m trainer.push --model models/minilm-conll --hub-model-id user/minilm-conll [--hub-private-repo]

The card is built for the repository and uploaded from memory: nothing in the directory is written. Only the model,
its tokenizer, the results and the card leave the machine, never checkpoints or optimizer states. The token comes
from HF_TOKEN or the cached login (`hf auth login`); there is no --token flag, so it never shows in shell history.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import Optional, Sequence

from trainer.cli import field_help, run_door
from trainer.config import Config
from trainer.hub.card import CardError
from trainer.hub.push import HubPushError, push
from trainer.outputs import RUN_CONFIG_FILE


@dataclass
class PushArgs:
    model: str = field_help(
        "A trained output directory (config.json, model weights, run_config.json, eval_results.json)."
    )
    hub_model_id: Optional[str] = field_help(
        "Hub repository `user/name`. Default: the run's --hub-model-id, else the directory's name.", default=None
    )
    hub_private_repo: Optional[bool] = field_help(
        "Create the repository as private. Default: the run's --hub-private-repo.",
        default=None,
        metadata={"nargs": "?", "const": True},
    )
    push_unlearned: bool = field_help(
        "Push even a model that predicts no entity on validation (refused by default: it has learnt nothing).",
        default=False,
    )


def push_run(args: PushArgs) -> str:
    """Push `args.model`; the repository and its privacy default to what the run recorded (run_config.json)."""
    out, hub_model_id, private = args.model, args.hub_model_id, args.hub_private_repo
    run_config = os.path.join(out, RUN_CONFIG_FILE)
    if os.path.exists(run_config) and (hub_model_id is None or private is None):
        try:
            cfg = Config.load(run_config)
            hub_model_id = hub_model_id or cfg.hub_model_id
            private = cfg.hub_private_repo if private is None else private
        except (ValueError, TypeError, OSError):
            pass  # push() reports what is wrong with the directory
    hub_model_id = hub_model_id or os.path.basename(os.path.abspath(out))
    url = push(out, hub_model_id, private=bool(private), allow_unlearned=args.push_unlearned)
    return f"pushed {out} to {url}"


def main(argv: Optional[Sequence[str]] = None) -> int:
    return run_door(PushArgs, argv, "python -m trainer.push", __doc__, push_run, (HubPushError, CardError), code=1)


if __name__ == "__main__":
    sys.exit(main())
