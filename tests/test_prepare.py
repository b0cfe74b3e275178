"""What prepare() builds from a Config: here, the model's attention dropout (--attention-dropout)."""

import re

import pytest
from transformers import BertConfig, DistilBertConfig, GPT2Config

from trainer.config import Config
from trainer.prepare import attention_dropout_override, prepare

from conftest import CONLL_SAMPLE


def test_attention_dropout_is_set_when_the_model_is_built(tiny_encoder_dir, tmp_path):
    def attention_dropouts(p):
        cfg = Config(model_name_or_path=tiny_encoder_dir, data_dir=str(CONLL_SAMPLE), max_train_samples=4,
                     max_eval_samples=4, output_dir=str(tmp_path / f"out-{p}"), attention_dropout=p)
        model = prepare(cfg).model
        return model.config.attention_probs_dropout_prob, {
            layer.attention.self.dropout.p for layer in model.bert.encoder.layer}

    base = BertConfig.from_pretrained(tiny_encoder_dir).attention_probs_dropout_prob
    assert base > 0
    assert attention_dropouts(None) == (base, {base})  # unset: the model's own
    assert attention_dropouts(0.0) == (0.0, {0.0})  # and recorded in the config every save writes


@pytest.mark.parametrize("config, name", [(BertConfig(), "attention_probs_dropout_prob"),
                                          (DistilBertConfig(), "attention_dropout")])
def test_attention_dropout_name_follows_the_model_family(config, name, tmp_path):
    config.save_pretrained(tmp_path)
    assert attention_dropout_override(str(tmp_path), None) == {}
    assert attention_dropout_override(str(tmp_path), 0.0) == {name: 0.0}


def test_a_model_without_attention_dropout_setting_is_refused(tmp_path):
    GPT2Config().save_pretrained(tmp_path)  # calls it attn_pdrop
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path}: its config (GPT2Config) has none of "
                                                   "attention_probs_dropout_prob, attention_dropout")):
        attention_dropout_override(str(tmp_path), 0.0)
