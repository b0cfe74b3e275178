"""The files of an output directory, by name: what the trainer writes and the Space, the model card and the Hub read.
Imports nothing, so serving code can name them without pulling in training dependencies."""

RUN_CONFIG_FILE = "run_config.json"      # the Config of the run (trainer.config)
TRAIN_RESULTS_FILE = "train_results.json"  # time, throughput, log history, data description, versions (finish.py)
EVAL_RESULTS_FILE = "eval_results.json"    # word-level scores per split (metrics.py)


def predictions_file(split: str) -> str:
    """One sentence a line: tokens, gold and predicted IOB2 tags (metrics.py)."""
    return f"predictions_{split}.jsonl"
