"""`python -m trainer.push --output-dir DIR --hub-model-id user/name [--private]`: regenerate the model card of a
trained output directory and push it to the Hub. The retry path of a failed `python -m trainer ... --push-to-hub`.

The token comes from HF_TOKEN or the cached login (`hf auth login`); there is deliberately no --token flag, so a token
never shows in shell history or the process list.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Optional, Sequence

from trainer.config import Config
from trainer.outputs import RUN_CONFIG_FILE


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer.push", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-dir", "--output_dir", required=True,
                   help="A trained output directory (config.json, model weights, run_config.json, eval_results.json).")
    p.add_argument("--hub-model-id", "--hub_model_id", default=None,
                   help="Hub repository `user/name`. Default: the run's --hub-model-id, else the directory's name.")
    p.add_argument("--private", action="store_true", default=None,
                   help="Create the repository as private (default: the run's --hub-private-repo).")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    from trainer.hub import CardError, HubPushError, push

    args = make_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    out = args.output_dir
    hub_model_id, private = args.hub_model_id, args.private
    run_config = os.path.join(out, RUN_CONFIG_FILE)
    if os.path.exists(run_config) and (hub_model_id is None or private is None):
        try:
            cfg = Config.load(run_config)
            hub_model_id = hub_model_id or cfg.hub_model_id
            private = cfg.hub_private_repo if private is None else private
        except (ValueError, TypeError, OSError):
            pass  # push() reports what is wrong with the directory
    hub_model_id = hub_model_id or os.path.basename(os.path.abspath(out))
    try:
        url = push(out, hub_model_id, private=bool(private))
    except (HubPushError, CardError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"pushed {out} to {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
