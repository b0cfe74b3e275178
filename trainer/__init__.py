"""Fine-tune a transformer for token classification (NER, POS, chunking), evaluate it at word level with seqeval,
save it and share it. `python -m trainer --help` lists every option."""

__version__ = "0.1.0"
