import numpy as np
import pytest

from trainer.evaluation.metrics import score, validation_scores
from trainer.reading.windows import DocumentWindows


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


def log_onehot(ids, n_labels, p=0.9):
    """Per-position log-probabilities: `p` on the given label, the rest spread over the others."""
    out = np.full((len(ids), n_labels), np.log((1 - p) / (n_labels - 1)))
    out[np.arange(len(ids)), ids] = np.log(p)
    return out


def test_validation_scores_read_words_from_their_windows_and_refuse_other_row_counts():
    """Per-epoch validation maps window rows back to words with the reading rule of the final evaluation, and a row
    count other than the windows' (a distributed gather that dropped or repeated rows) is an error."""
    # One document of two sentences (3 + 2 words) in two windows; word 2 is in both, with more context in window 1.
    windows = DocumentWindows(
        {"input_ids": [[0] * 5, [0] * 5]},
        [0, 0],
        [[None, 0, 1, 2, None], [None, 1, 2, 3, 4]],
        [[(0, 0), (0, 3), (0, 3), (0, 3), (0, 0)], [(0, 0), (0, 3), (0, 3), (0, 3), (0, 3)]],
        [(0, 0, 3), (0, 3, 2)],
    )
    id2label = {0: "O", 1: "B-PER", 2: "I-PER"}
    gold = [["B-PER", "O", "B-PER"], ["I-PER", "O"]]
    # word 2 is O in window 0 but B-PER in window 1, where it is read
    preds = [log_onehot([0, 1, 0, 0, 0], 3), log_onehot([0, 0, 1, 2, 0], 3)]
    assert windows.word_tags(preds, id2label) == [["B-PER", "O", "B-PER"], ["I-PER", "O"]]
    scores = validation_scores(preds, windows, gold, id2label, "IOB2")
    assert scores["f1"] == 1.0 and scores["num_sentences"] == 2 and scores["num_windows"] == 2
    with pytest.raises(ValueError, match="covered 3 predicted rows for a split of 2 windows"):
        validation_scores(preds + [preds[0]], windows, gold, id2label, "IOB2")
