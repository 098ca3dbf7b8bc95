"""Word vocabulary and sliding-window perplexity."""

from __future__ import annotations

import json
import math

import pytest
import torch

from robustbench_bilateral.models import create_model
from robustbench_bilateral.results.stats import perplexity
from robustbench_bilateral.text import AAA, EOS, UNK, WordVocab, sliding_window_nll, window_plan

LINES = ["The cat sat .", "the cat , sat", "", "The dog sat ."]


def test_vocab_keeps_case_and_punctuation_and_orders_by_count():
    vocab = WordVocab.build(LINES, min_count=2)
    assert vocab.to_list() == [UNK, EOS, AAA, "sat", ".", "The", "cat"]
    assert vocab.index("the") == vocab.unk_id and "The" in vocab and "," not in vocab
    assert len(WordVocab.build(LINES, min_count=1, max_size=4)) == 4
    assert len(WordVocab.build(LINES, min_count=1)) == 10


def test_encode_lines_appends_eos_and_round_trips():
    vocab = WordVocab.build(LINES, min_count=2)
    ids = vocab.encode_lines(LINES)
    assert ids.dtype == torch.long
    assert vocab.decode(ids) == "The cat sat . <eos> <unk> cat <unk> sat <eos> <eos> The <unk> sat . <eos>"
    again = WordVocab.from_list(json.loads(json.dumps(vocab.to_list())))
    assert torch.equal(again.encode_lines(LINES), ids)
    assert WordVocab.build(["<unk> a a <eos> AAA"]).to_list() == [UNK, EOS, AAA, "a"]
    with pytest.raises(ValueError):
        WordVocab(["a", UNK, EOS])


@pytest.mark.parametrize("length,context", [(50, 8), (9, 8), (40, 7), (2, 4)])
def test_window_plan_scores_every_token_once_with_half_a_context(length, context):
    """Stride ``context // 2`` (training's approximation): every target sees more than half a context."""
    scored = []
    for start, end, first in window_plan(length, context, context // 2):
        assert end - start <= context
        targets = range(first, end + 1)
        assert all(t - start > context // 2 or start == 0 for t in targets)
        scored.extend(targets)
    assert scored == list(range(1, length))


@pytest.mark.parametrize("stride", [1, 4])
def test_sliding_window_nll_matches_direct_recomputation(stride):
    """One forward pass per target: from ``min(t, context)`` ids with stride 1, else from the start of
    its window (window k > 0 ends at ``context + k * stride``, the last at ``len(ids) - 1``)."""
    torch.manual_seed(0)
    model = create_model("bilat_lm", "bilateral+boost", vocab_size=30, context_length=8, embed_dim=16, depth=1, num_heads=2)
    ids = torch.randint(0, 30, (31,))
    context = 8
    nll, counts = sliding_window_nll(model, ids, context, stride, batch_size=3)
    assert nll.dtype == torch.float64 and counts.dtype == torch.int64 and int(counts.sum()) == 30

    direct = []
    with torch.no_grad():
        for t in range(1, len(ids)):
            end = min(context + stride * math.ceil((t - context) / stride), len(ids) - 1)
            start = 0 if t <= context else end - context
            logits = model(ids[start:t][None])[0, -1]
            direct.append(-float(logits.log_softmax(-1)[ids[t]]))
    per_window = [sum(direct[first - 1 : end]) for _, end, first in window_plan(len(ids), context, stride)]
    torch.testing.assert_close(nll, torch.tensor(per_window, dtype=torch.float64), rtol=1e-5, atol=1e-5)
    assert perplexity(nll, counts) == pytest.approx(math.exp(sum(direct) / 30), rel=1e-6)
    assert model.training
