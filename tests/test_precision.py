import logging

from trainer import precision
from trainer.config import Config


def test_bf16_only_where_native(monkeypatch, caplog):
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    with caplog.at_level(logging.WARNING):
        assert precision.mixed_precision(Config(bf16=True)) == "no"
    assert "--bf16 ignored" in caplog.text and "fp32" in caplog.text
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert precision.mixed_precision(Config(bf16=True)) == "bf16"
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    assert precision.mixed_precision(Config(bf16=True)) == "bf16"
    assert precision.mixed_precision(Config()) == "no"


def test_this_machines_flags_are_read():
    flags = precision.cpu_flags()
    assert not flags or "fpu" in flags or any(f.startswith(("avx", "sse", "neon", "asimd")) for f in flags)
