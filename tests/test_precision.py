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


def test_eager_attention_only_for_native_bf16_on_a_cpu(monkeypatch):
    """sdpa's bf16 backward is slow on a CPU; eager attention's products run on its bf16 units. Nothing changes
    elsewhere: fp32, emulated bf16 (which trains in fp32) and GPUs keep the model's default attention."""
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16"}))
    assert precision.attention_implementation(Config(bf16=True)) == {"attn_implementation": "eager"}
    assert precision.attention_implementation(Config()) == {}
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2"}))
    assert precision.attention_implementation(Config(bf16=True)) == {}
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: True)
    assert precision.attention_implementation(Config(bf16=True)) == {}
