from trainer.reading.labels import (
    IGNORE_INDEX,
    align_labels,
    complete_labels,
    continuation_map,
    detect_scheme,
    output_scheme,
    sort_labels,
    tag_error,
    tags_to_spans,
    to_iob2,
)


def test_tag_error_names_the_prefix():
    assert tag_error("O") is None and tag_error("B-PER") is None and tag_error("S-LOC") is None
    msg = tag_error("X-LOC")
    assert "unknown tag prefix 'X'" in msg and "B-, I-, E- or S-" in msg
    assert "unknown tag prefix" in tag_error("PER")


def test_detect_scheme():
    assert detect_scheme([["I-PER", "I-PER", "O", "I-LOC"]]) == "IOB1"
    assert detect_scheme([["B-PER", "I-PER", "O", "B-LOC"]]) == "IOB2"
    # IOB1 uses B- only where two entities of one type touch; still IOB1 because I- opens chunks elsewhere.
    assert detect_scheme([["I-PER", "B-PER"], ["O", "I-ORG"]]) == "IOB1"
    assert detect_scheme([["S-PER", "O", "B-LOC", "E-LOC"]]) == "BIOES"
    assert detect_scheme([["NN", "VBZ", "DT"]]) == "none"


def test_iob1_to_iob2():
    assert to_iob2(["I-ORG", "O", "I-MISC", "I-MISC", "I-PER", "B-PER", "I-PER"], "IOB1") == [
        "B-ORG",
        "O",
        "B-MISC",
        "I-MISC",
        "B-PER",
        "B-PER",
        "I-PER",
    ]


def test_bioes_to_iob2():
    assert to_iob2(["S-ORG", "B-PER", "I-PER", "E-PER", "O", "S-LOC", "S-LOC"], "BIOES") == [
        "B-ORG",
        "B-PER",
        "I-PER",
        "I-PER",
        "O",
        "B-LOC",
        "B-LOC",
    ]


def test_iob2_and_plain_pass_through():
    assert to_iob2(["B-PER", "I-PER"], "IOB2") == ["B-PER", "I-PER"]
    assert to_iob2(["NN", "VB"], "none") == ["NN", "VB"]


def test_sort_labels_o_first_then_type_b_before_i():
    assert sort_labels(["I-PER", "B-LOC", "O", "B-PER", "I-LOC"]) == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def test_tags_to_spans():
    assert tags_to_spans(["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"]) == [
        ("PER", 0, 2),
        ("LOC", 3, 4),
        ("LOC", 4, 5),
        ("ORG", 5, 6),
    ]
    assert tags_to_spans(["O", "O"]) == []


def test_align_course_strategy_and_first_only():
    label2id = {"O": 0, "B-PER": 1, "I-PER": 2}
    # "Peter Blackburnish ." -> [CLS] peter black ##burn ##ish . [SEP]
    word_ids = [None, 0, 1, 1, 1, 2, None]
    words = [1, 2, 0]
    b_to_i = continuation_map(label2id)
    assert align_labels(words, word_ids, True, b_to_i) == [IGNORE_INDEX, 1, 2, 2, 2, 0, IGNORE_INDEX]
    assert align_labels([1, 1, 0], word_ids, True, b_to_i) == [IGNORE_INDEX, 1, 1, 2, 2, 0, IGNORE_INDEX]
    assert align_labels([1, 1, 0], word_ids, False, b_to_i) == [
        IGNORE_INDEX,
        1,
        1,
        IGNORE_INDEX,
        IGNORE_INDEX,
        0,
        IGNORE_INDEX,
    ]


def test_complete_labels_spell_every_type_in_iob2():
    assert complete_labels(["B-PER", "I-LOC", "O"], "IOB2") == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert complete_labels(["I-ORG"], "IOB1") == ["O", "B-ORG", "I-ORG"]  # O is always there for chunk tags
    assert complete_labels(["NN", "VB", "NN"], "none") == ["NN", "VB"]


def test_output_scheme_reads_bioes_models_as_bioes_and_others_as_iob2():
    assert output_scheme(["O", "B-PER", "I-PER", "E-PER", "S-PER"]) == "BIOES"
    assert output_scheme(["O", "B-PER", "I-PER"]) == "IOB2"
    assert output_scheme(["O", "I-PER"]) == "IOB2"  # IOB1-style labels: a stray I- opens a span either way
