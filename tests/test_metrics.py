import pytest

from trainer.labels import IGNORE_INDEX
from trainer.metrics import score, word_predictions


def test_seqeval_overall_and_per_entity():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    res = score(gold, pred, "IOB2")
    assert res["overall"]["precision"] == pytest.approx(2 / 3)
    assert res["overall"]["recall"] == pytest.approx(2 / 3)
    assert res["overall"]["accuracy"] == pytest.approx(5 / 6)
    assert res["per_entity"]["PER"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert res["per_entity"]["LOC"]["recall"] == 0.0 and res["per_entity"]["LOC"]["support"] == 1
    assert res["per_entity"]["ORG"]["precision"] == 0.5


def test_default_mode_is_conlleval_compatible():
    # conlleval counts a chunk opened by a stray I- (strict mode would not): the prediction still matches.
    res = score([["B-PER", "I-PER"]], [["I-PER", "I-PER"]], "IOB2")
    assert res["overall"]["f1"] == 1.0


def test_plain_tags_scored_per_tag():
    res = score([["NN", "VB", "NN"]], [["NN", "NN", "NN"]], "none")
    assert res["overall"]["accuracy"] == pytest.approx(2 / 3)
    assert res["per_entity"]["NN"]["precision"] == pytest.approx(2 / 3)
    assert res["per_entity"]["VB"]["recall"] == 0.0


def test_word_predictions_use_first_subtokens_and_truncated_words_are_o():
    id2label = {0: "O", 1: "B-PER", 2: "I-PER"}
    gold = [["B-PER", "I-PER", "O", "B-PER"]]  # the last word was cut by truncation
    labels = [[IGNORE_INDEX, 1, 2, IGNORE_INDEX, 0, IGNORE_INDEX]]
    preds = [[0, 1, 2, 1, 0, 0]]
    words = word_predictions(preds, labels, gold, id2label)
    assert words == [["B-PER", "I-PER", "O", "O"]]
    assert score(gold, words, "IOB2")["overall"]["recall"] == 0.5  # the cut entity counts as missed
