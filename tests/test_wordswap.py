"""Word-swap contamination on real Shakespeare lines."""

from __future__ import annotations

import pytest
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from robustbench_bilateral.data import load_source, text_lines
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.wordswap import WordSwapper, is_candidate, swap_count
from robustbench_bilateral.wordswap.swap import split_core


@pytest.fixture(scope="module")
def hamlet_lines():
    return text_lines(load_source("shakespeare").split("test"))[:400]


@pytest.mark.parametrize("rate", [0.015, 0.1, 0.3])
def test_swap_count_per_line_follows_the_formula(hamlet_lines, rate):
    result = WordSwapper("aaa", rate).contaminate(hamlet_lines, seed=0)
    for original, swapped, positions in zip(hamlet_lines, result.lines, result.positions):
        tokens = original.split()
        candidates = [j for j, token in enumerate(tokens) if is_candidate(token)]
        assert len(positions) == min(max(1, int(rate * len(tokens))), len(candidates))
        new_tokens = swapped.split()
        changed = [j for j, (a, b) in enumerate(zip(tokens, new_tokens)) if a != b]
        assert changed == positions and all(split_core(new_tokens[j])[1] == "AAA" for j in positions)


def test_no_stop_word_is_ever_swapped(hamlet_lines):
    for kind in ("aaa", "typo", "synonym"):
        result = WordSwapper(kind, 0.3).contaminate(hamlet_lines, seed=1)
        for original, positions in zip(hamlet_lines, result.positions):
            tokens = original.split()
            assert all(split_core(tokens[j])[1].lower() not in ENGLISH_STOP_WORDS for j in positions)


def test_same_seed_same_text_other_seed_other_text(hamlet_lines):
    swapper = WordSwapper("typo", 0.1)
    first, again = swapper.contaminate(hamlet_lines, 5), swapper.contaminate(hamlet_lines, 5)
    assert first.lines == again.lines
    assert swapper.contaminate(hamlet_lines, 6).lines != first.lines


def test_a_line_does_not_depend_on_the_lines_around_it(hamlet_lines):
    swapper = WordSwapper("aaa", 0.1)
    whole = swapper.contaminate(hamlet_lines[:50], 2).lines
    assert swapper.contaminate(hamlet_lines[:20], 2).lines == whole[:20]


def test_synonym_never_returns_the_word_and_counts_skips(hamlet_lines):
    result = WordSwapper("synonym", 0.2).contaminate(hamlet_lines, seed=3)
    replaced = 0
    for original, swapped, positions in zip(hamlet_lines, result.lines, result.positions):
        for j in positions:
            before, after = split_core(original.split()[j])[1], split_core(swapped.split()[j])[1]
            assert before.lower() != after.lower()
            replaced += 1
    assert replaced > 50 and result.skipped > 0


def test_synonyms_stay_in_the_vocabulary_when_one_is_given(hamlet_lines):
    vocabulary = {"death": 9, "love": 7, "dead": 5, "house": 3, "bang": 2, "go": 2, "die": 1}
    result = WordSwapper("synonym", 0.3, vocabulary).contaminate(hamlet_lines, seed=4)
    chosen = sum(len(positions) for positions in result.positions)
    new_words = {split_core(line.split()[j])[1] for line, positions in zip(result.lines, result.positions) for j in positions}
    assert chosen > 0 and new_words <= set(vocabulary)
    assert result.skipped > WordSwapper("synonym", 0.3).contaminate(hamlet_lines, seed=4).skipped


def test_random_words_come_from_the_vocabulary(hamlet_lines):
    vocabulary = {"crown": 10, "dagger": 1}
    result = WordSwapper("random", 0.1, vocabulary).contaminate(hamlet_lines, seed=4)
    drawn = [split_core(line.split()[j])[1] for line, positions in zip(result.lines, result.positions) for j in positions]
    assert set(drawn) == {"crown", "dagger"} and drawn.count("crown") > drawn.count("dagger")


def test_rate_zero_leaves_every_line_as_it_was(hamlet_lines):
    assert WordSwapper("aaa", 0.0).contaminate(hamlet_lines, 0).lines == hamlet_lines
    assert swap_count(10, 0.0) == 0 and swap_count(10, 0.01) == 1 and swap_count(250, 0.015) == 3


def test_input_lines_are_not_modified(hamlet_lines):
    kept = list(hamlet_lines)
    WordSwapper("aaa", 0.5).contaminate(hamlet_lines, 0)
    assert hamlet_lines == kept


def test_bad_settings_name_the_fix():
    with pytest.raises(InputError, match="unknown word-swap replacement 'swap': choose one of aaa, random"):
        WordSwapper("swap", 0.1)
    with pytest.raises(InputError, match="rate must be in"):
        WordSwapper("aaa", 1.5)
