import itertools

import numpy as np
import pytest
from conftest import is_valid_iob2

from trainer.reading.decoding import Decoder, valid_iob2
from trainer.reading.labels import iob2_transitions

LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG"]


def test_transitions_allow_only_valid_iob2():
    first, follows = iob2_transitions(LABELS)
    assert first == [True, True, False, True, False]
    i = LABELS.index
    assert follows[i("B-PER")][i("I-PER")] and follows[i("I-PER")][i("I-PER")]
    assert not follows[i("O")][i("I-PER")] and not follows[i("B-ORG")][i("I-PER")]
    assert all(follows[a][i("O")] and follows[a][i("B-ORG")] for a in range(len(LABELS)))


def test_no_rule_for_plain_tags_or_bioes():
    assert iob2_transitions(["NN", "VB", "DT"]) is None
    assert iob2_transitions(["O", "B-PER", "I-PER", "E-PER", "S-PER"]) is None
    assert Decoder(["NN", "VB"], "viterbi").decoding == "argmax"


def test_viterbi_repairs_what_argmax_breaks():
    # argmax: I-PER first (invalid), then I-ORG after I-PER (invalid).
    probs = np.array([[0.1, 0.2, 0.6, 0.05, 0.05], [0.1, 0.1, 0.1, 0.2, 0.5], [0.9, 0.02, 0.02, 0.03, 0.03]])
    assert Decoder(LABELS)(np.log(probs)) == [2, 4, 0]
    assert Decoder(LABELS, "viterbi")(np.log(probs)) == [1, 3, 0]  # B-PER, B-ORG: the best valid sequence


def test_viterbi_is_the_best_valid_sequence_by_brute_force():
    rng = np.random.default_rng(0)
    first, follows = (np.array(x) for x in iob2_transitions(LABELS))
    for _ in range(50):
        logp = np.log(rng.dirichlet(np.ones(len(LABELS)), size=4))
        best = max(
            (seq for seq in itertools.product(range(len(LABELS)), repeat=4) if is_valid_iob2([LABELS[j] for j in seq])),
            key=lambda seq: sum(logp[t, j] for t, j in enumerate(seq)),
        )
        got = valid_iob2(logp, first, follows)
        assert is_valid_iob2([LABELS[j] for j in got])
        assert sum(logp[t, j] for t, j in enumerate(got)) == pytest.approx(sum(logp[t, j] for t, j in enumerate(best)))


def test_empty_sentence_and_unknown_decoding():
    assert Decoder(LABELS, "viterbi")(np.zeros((0, len(LABELS)))) == []
    with pytest.raises(ValueError, match="unknown decoding"):
        Decoder(LABELS, "beam")


def test_the_argmax_shortcut_gives_viterbis_answer():
    rng = np.random.default_rng(1)
    decode = Decoder(LABELS, "viterbi")
    first, follows = decode.rule
    for _ in range(200):
        logp = np.log(rng.dirichlet(np.ones(len(LABELS)) * 0.3, size=rng.integers(1, 8)))
        assert decode(logp) == valid_iob2(logp, first, follows)
