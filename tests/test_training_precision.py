import logging

from trainer import machine
from trainer.config import Config
from trainer.training import precision


def test_bf16_only_where_native(monkeypatch, caplog):
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    with caplog.at_level(logging.WARNING):
        assert precision.mixed_precision(Config(bf16=True)) == "no"
    assert "--bf16 ignored" in caplog.text and "fp32" in caplog.text
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert precision.mixed_precision(Config(bf16=True)) == "bf16"
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    assert precision.mixed_precision(Config(bf16=True)) == "bf16"
    assert precision.mixed_precision(Config()) == "no"


def test_this_machines_flags_are_read():
    flags = machine.cpu_flags()
    assert not flags or "fpu" in flags or any(f.startswith(("avx", "sse", "neon", "asimd")) for f in flags)


def test_eager_attention_only_for_native_bf16_on_a_cpu(monkeypatch):
    """sdpa's bf16 backward is slow on a CPU; eager attention's products run on its bf16 units. Nothing changes
    elsewhere: fp32, emulated bf16 (which trains in fp32) and GPUs keep the model's default attention."""
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx512f", "amx_bf16"}))
    assert precision.attention_implementation(Config(bf16=True)) == {"attn_implementation": "eager"}
    assert precision.attention_implementation(Config()) == {}
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"avx2"}))
    assert precision.attention_implementation(Config(bf16=True)) == {}
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: True)
    assert precision.attention_implementation(Config(bf16=True)) == {}


def test_evaluation_runs_sdpa_while_training_runs_eager(monkeypatch, tmp_path):
    """Eager attention is the fast one in a bf16 backward on a CPU, sdpa in inference: evaluation switches and back."""
    from transformers import AutoModelForTokenClassification, BertConfig, BertForTokenClassification

    BertForTokenClassification(
        BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, vocab_size=50)
    ).save_pretrained(tmp_path)
    monkeypatch.setattr(precision.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(machine, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    cfg = Config(bf16=True)
    model = AutoModelForTokenClassification.from_pretrained(tmp_path, **precision.attention_implementation(cfg))
    assert model.config._attn_implementation == "eager"
    with precision.inference_attention(model, cfg):
        assert model.config._attn_implementation == "sdpa"
    assert model.config._attn_implementation == "eager"
    plain = AutoModelForTokenClassification.from_pretrained(tmp_path)
    with precision.inference_attention(plain, Config()):  # nothing to switch
        assert plain.config._attn_implementation == "sdpa"
