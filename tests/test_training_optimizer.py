"""The parameter groups both engines optimise (trainer.training.optimizer): weight decay by the Trainer's rule, and
layer-wise learning rates (--layer-lr-decay)."""

from __future__ import annotations

import glob

import pytest
import torch
from conftest import CONLL_SAMPLE, train_cli
from transformers import BertConfig, BertForTokenClassification

from trainer.training.optimizer import optimizer_groups


def tiny_model(layers: int = 1) -> BertForTokenClassification:
    torch.manual_seed(0)
    return BertForTokenClassification(
        BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=layers, num_attention_heads=2, intermediate_size=16,
                   num_labels=3)
    )  # fmt: skip


def test_no_weight_decay_on_biases_and_layer_norms():
    model = tiny_model()
    decay, no_decay = optimizer_groups(model, 0.01, 1e-4)
    assert decay["lr"] == no_decay["lr"] == 1e-4
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in model.named_parameters()}
    decayed = {names[id(p)] for p in decay["params"]}
    not_decayed = {names[id(p)] for p in no_decay["params"]}
    assert "classifier.weight" in decayed and "bert.encoder.layer.0.attention.self.query.weight" in decayed
    assert "classifier.bias" in not_decayed and "bert.embeddings.LayerNorm.weight" in not_decayed
    assert not decayed & not_decayed and len(decayed | not_decayed) == len(names)


def test_each_layer_learns_at_the_decay_times_the_rate_of_the_one_above():
    model = tiny_model(layers=2)
    groups = optimizer_groups(model, 0.01, 1e-3, layer_decay=0.5)
    names = {id(p): n for n, p in model.named_parameters()}
    lr = {names[id(p)]: g["lr"] for g in groups for p in g["params"]}
    assert len(lr) == len(names)  # every parameter, once
    assert lr["classifier.weight"] == lr["classifier.bias"] == 1e-3
    assert lr["bert.encoder.layer.1.output.dense.weight"] == 5e-4
    assert lr["bert.encoder.layer.0.attention.self.query.weight"] == 2.5e-4
    assert lr["bert.embeddings.word_embeddings.weight"] == lr["bert.embeddings.LayerNorm.bias"] == 1.25e-4
    assert groups[0]["lr"] == 1e-3  # the top first: the rate both engines log is --learning-rate's
    decayed = {names[id(p)] for g in groups if g["weight_decay"] for p in g["params"]}
    assert "bert.embeddings.word_embeddings.weight" in decayed and "bert.embeddings.LayerNorm.bias" not in decayed


@pytest.mark.parametrize("engine, optimizer_file", [("trainer", "optimizer.pt"), ("accelerate", "optimizer.bin")])
def test_both_engines_train_with_the_layer_rates(engine, optimizer_file, tiny_encoder_dir, tmp_path):
    out = tmp_path / engine
    train_cli(["--model-name-or-path", tiny_encoder_dir, "--data-dir", str(CONLL_SAMPLE), "--max-train-samples", "8",
               "--max-eval-samples", "4", "--num-train-epochs", "1", "--learning-rate", "1e-3", "--layer-lr-decay",
               "0.5", "--engine", engine, "--output-dir", str(out)])  # fmt: skip
    (saved,) = glob.glob(str(out / "checkpoint-*" / optimizer_file))
    groups = torch.load(saved, weights_only=False)["param_groups"]
    # The tiny encoder's 2 layers: classifier 1e-3, layer 1 5e-4, layer 0 2.5e-4, embeddings 1.25e-4 (as scheduled).
    assert sorted({g["initial_lr"] for g in groups}) == [1.25e-4, 2.5e-4, 5e-4, 1e-3]
