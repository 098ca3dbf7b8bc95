"""Word vocabulary and sliding-window perplexity, checked against direct recomputation."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from robustbench_bilateral.data import load_source, text_lines
from robustbench_bilateral.models import create_model
from robustbench_bilateral.text import WordVocab, sliding_window_nll, window_plan


def test_vocabulary_ranks_words_and_maps_the_rest_to_unk():
    vocab = WordVocab.build(["a b b c", "b a d"], min_count=2)
    assert vocab.words == ["<unk>", "<eos>", "b", "a"]
    assert vocab.encode_lines(["b a", "c"]).tolist() == [2, 3, 1, 0, 1]
    assert WordVocab.from_list(vocab.to_list()).words == vocab.words


def test_every_token_after_the_first_is_scored_exactly_once():
    for length, context in [(10, 4), (11, 4), (100, 7), (5, 8), (2, 3)]:
        scored = [t for _, end, first in window_plan(length, context) for t in range(first, end + 1)]
        assert scored == list(range(1, length))


def test_sliding_window_perplexity_equals_direct_recomputation_on_real_text():
    torch.manual_seed(0)
    lines = text_lines(load_source("shakespeare").split("test"))[:60]
    vocab = WordVocab.build(lines, min_count=1)
    ids = vocab.encode_lines(lines)
    context = 16
    model = create_model("bilat_lm", variant="bilateral+boost", vocab_size=len(vocab), context_length=context,
                         embed_dim=32, depth=2, num_heads=2).eval()
    nll, counts = sliding_window_nll(model, ids, context, batch_size=5)
    total, words = 0.0, 0
    with torch.no_grad():
        for position in range(1, len(ids)):
            window_start = 0 if position <= context else ((position - context - 1) // (context // 2) + 1) * (context // 2)
            window = ids[window_start:position]
            logits = model(window[None])[0, -1].double()
            total += float(-F.log_softmax(logits, -1)[ids[position]])
            words += 1
    assert int(counts.sum()) == words == len(ids) - 1
    assert math.exp(float(nll.sum()) / float(counts.sum())) == pytest.approx(math.exp(total / words), rel=1e-5)
    again, _ = sliding_window_nll(model, ids, context, batch_size=64)
    torch.testing.assert_close(nll, again, rtol=1e-6, atol=1e-6)

