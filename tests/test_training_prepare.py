"""What prepare() builds from a Config: the model's dropouts (--attention-dropout, --hidden-dropout), the training
windows."""

import re

import pytest
from conftest import CONLL_SAMPLE
from transformers import BertConfig, DistilBertConfig, GPT2Config

from trainer.config import Config
from trainer.training.prepare import dropout_overrides, prepare


def test_dropouts_are_set_when_the_model_is_built(tiny_encoder_dir, tmp_path):
    def dropouts(attention, hidden):
        cfg = Config(
            model_name_or_path=tiny_encoder_dir,
            data_dir=str(CONLL_SAMPLE),
            max_train_samples=4,
            max_eval_samples=4,
            output_dir=str(tmp_path / f"out-{attention}-{hidden}"),
            attention_dropout=attention,
            hidden_dropout=hidden,
        )
        model = prepare(cfg).model
        layers = model.bert.encoder.layer
        return (
            model.config.attention_probs_dropout_prob,
            {layer.attention.self.dropout.p for layer in layers},
            model.config.hidden_dropout_prob,
            {layer.output.dropout.p for layer in layers} | {model.bert.embeddings.dropout.p, model.dropout.p},
        )

    base = BertConfig.from_pretrained(tiny_encoder_dir)
    a, h = base.attention_probs_dropout_prob, base.hidden_dropout_prob
    assert a > 0 and h > 0
    assert dropouts(None, None) == (a, {a}, h, {h})  # unset: the model's own
    # Each on its own, and recorded in the config every save writes.
    assert dropouts(0.0, None) == (0.0, {0.0}, h, {h})
    assert dropouts(None, 0.0) == (a, {a}, 0.0, {0.0})


def test_every_training_window_has_a_label(tiny_encoder_dir, tmp_path):
    # Windows of 2 sub-tokens of text moving 1 at a time: a word of 3+ pieces leaves windows holding only its rest.
    cfg = Config(
        model_name_or_path=tiny_encoder_dir,
        data_dir=str(CONLL_SAMPLE),
        max_train_samples=6,
        max_eval_samples=4,
        output_dir=str(tmp_path / "out"),
        max_seq_length=4,
        stride=1,
    )
    labels = prepare(cfg).train["labels"]
    assert len(labels) > 6 and all(any(label != -100 for label in row) for row in labels)


@pytest.mark.parametrize(
    "config, names",
    [
        (BertConfig(), ("attention_probs_dropout_prob", "hidden_dropout_prob")),
        (DistilBertConfig(), ("attention_dropout", "dropout")),
    ],
)
def test_dropout_names_follow_the_model_family(config, names, tmp_path):
    config.save_pretrained(tmp_path)
    assert dropout_overrides(str(tmp_path)) == {}
    assert dropout_overrides(str(tmp_path), 0.0) == {names[0]: 0.0}
    assert dropout_overrides(str(tmp_path), 0.0, 0.05) == {names[0]: 0.0, names[1]: 0.05}


def test_a_model_without_the_dropout_setting_is_refused(tmp_path):
    GPT2Config().save_pretrained(tmp_path)  # calls them attn_pdrop and resid_pdrop
    with pytest.raises(
        ValueError,
        match=re.escape(
            f"{tmp_path}: its config (GPT2Config) has none of "
            "attention_probs_dropout_prob, attention_dropout; leave "
            "--attention-dropout unset"
        ),
    ):
        dropout_overrides(str(tmp_path), 0.0)
    with pytest.raises(ValueError, match=re.escape("has none of hidden_dropout_prob, dropout; leave --hidden-dropout")):
        dropout_overrides(str(tmp_path), hidden=0.0)
