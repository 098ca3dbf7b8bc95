"""Language-model evaluation: word-swapped Shakespeare text, sliding-window perplexity, the ``wordswap`` command.

``language_checkpoints`` (smoke-trained softmax and bilateral models) comes from ``conftest``."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from cli.main import cli
from robustbench_bilateral.checkpoint import load_checkpoint, read_metadata
from robustbench_bilateral.data import load_source, text_lines
from robustbench_bilateral.engine import Clean
from robustbench_bilateral.engine.language import TextSplit
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import BilatError, InputError
from robustbench_bilateral.evaluation import plan_cells, run_cells
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.sources import describe_checkpoint, load_split
from robustbench_bilateral.text import WordVocab
from robustbench_bilateral.threats import build_threat
from robustbench_bilateral.wordswap import is_candidate
from robustbench_bilateral.wordswap.swap import split_core

N_WORDS = 2000


@pytest.fixture(scope="module")
def train_lines() -> list[str]:
    return text_lines(load_source("shakespeare").split("train"))


@pytest.fixture(scope="module")
def shakespeare_meta(train_lines):
    """What a Shakespeare language checkpoint's metadata says about its data: task, dataset, vocabulary."""
    vocab = WordVocab.build(train_lines)
    return {"task": Task.LANGUAGE_MODELING.value, "dataset": "shakespeare", "vocab": vocab.to_list()}


@pytest.fixture(scope="module")
def hamlet_words(shakespeare_meta) -> TextSplit:
    """The first ``N_WORDS`` words of the Shakespeare test split (Hamlet comes first), with the training vocabulary."""
    return load_split("shakespeare", "test", N_WORDS, shakespeare_meta)


def wordswap(rate: float, replacement: str = "aaa"):
    return build_threat("wordswap", rate=rate, replacement=replacement)


def changed_positions(before: str, after: str) -> list[int]:
    old, new = before.split(), after.split()
    assert len(old) == len(new)
    return [j for j, (a, b) in enumerate(zip(old, new)) if a != b]


def test_the_split_holds_the_first_n_words_and_zero_means_all(hamlet_words, shakespeare_meta):
    lines = text_lines(load_source("shakespeare").split("test"))
    tokens = [len(line.split()) + 1 for line in hamlet_words.lines]
    assert list(hamlet_words.lines) == lines[: len(tokens)]
    assert sum(tokens[:-1]) < N_WORDS <= sum(tokens)
    assert len(hamlet_words.ids(Clean(), 0)) == N_WORDS
    whole = load_split("shakespeare", "test", 0, shakespeare_meta)
    assert len(whole.ids(Clean(), 0)) == sum(len(line.split()) + 1 for line in lines)


@pytest.mark.parametrize("rate", [0.015, 0.05, 0.2, 0.5])
def test_swap_count_per_line_follows_the_formula(hamlet_words, rate):
    swapped = hamlet_words.evaluated_lines(wordswap(rate), seed=0)
    assert len(swapped) == len(hamlet_words.lines)
    for original, line in zip(hamlet_words.lines, swapped):
        tokens = original.split()
        candidates = sum(is_candidate(token) for token in tokens)
        positions = changed_positions(original, line)
        assert len(positions) == min(max(1, int(rate * len(tokens))), candidates)
        assert all(split_core(line.split()[j])[1] == "AAA" for j in positions)


def test_no_stop_word_and_no_training_line_is_changed(hamlet_words, shakespeare_meta, train_lines):
    train_before = list(train_lines)
    for replacement in ("aaa", "random", "synonym"):
        swapped = hamlet_words.evaluated_lines(wordswap(0.3, replacement), seed=1)
        for original, line in zip(hamlet_words.lines, swapped):
            tokens = original.split()
            assert all(split_core(tokens[j])[1].lower() not in ENGLISH_STOP_WORDS for j in changed_positions(original, line))
    assert text_lines(load_source("shakespeare").split("train")) == train_before
    assert WordVocab.from_list(shakespeare_meta["vocab"]).index("AAA") == 2


def test_random_words_come_from_the_vocabulary_by_training_count(hamlet_words, shakespeare_meta):
    vocab = WordVocab.from_list(shakespeare_meta["vocab"])
    counts = hamlet_words.word_counts()
    assert set(counts) <= set(vocab.to_list()[2:]) and counts["the"] > counts["crown"] > 0
    assert "crown," in vocab and "crown," not in counts
    swapped = hamlet_words.evaluated_lines(wordswap(0.2, "random"), seed=2)
    drawn = [line.split()[j] for original, line in zip(hamlet_words.lines, swapped) for j in changed_positions(original, line)]
    assert len(drawn) > 200 and all(split_core(word)[1] in vocab for word in drawn)


def test_same_seed_same_text_for_any_number_of_words(hamlet_words, shakespeare_meta):
    threat = wordswap(0.1, "random")
    first = hamlet_words.evaluated_lines(threat, seed=5)
    assert hamlet_words.evaluated_lines(threat, seed=5) == first
    assert hamlet_words.evaluated_lines(threat, seed=6) != first
    shorter = load_split("shakespeare", "test", 500, shakespeare_meta)
    assert shorter.evaluated_lines(threat, seed=5) == first[: len(shorter.lines)]
    assert torch.equal(shorter.ids(threat, 5), hamlet_words.ids(threat, 5)[:500])


def test_synonym_never_returns_the_word_itself(hamlet_words):
    swapped = hamlet_words.evaluated_lines(wordswap(0.3, "synonym"), seed=3)
    pairs = [(split_core(original.split()[j])[1], split_core(line.split()[j])[1])
             for original, line in zip(hamlet_words.lines, swapped) for j in changed_positions(original, line)]
    assert len(pairs) > 100 and all(before.lower() != after.lower() for before, after in pairs)


def test_rate_zero_leaves_the_tokens_exactly_clean(hamlet_words):
    assert torch.equal(hamlet_words.ids(wordswap(0.0), 0), hamlet_words.ids(Clean(), 0))
    assert torch.equal(hamlet_words.ids(wordswap(0.0, "random"), 0), hamlet_words.ids(Clean(), 0))


def test_bad_word_swap_parameters_are_input_errors():
    with pytest.raises(InputError, match="rate: 1.5 is out of range"):
        wordswap(1.5)
    with pytest.raises(InputError, match="choose one of aaa"):
        wordswap(0.1, "antonym")
    with pytest.raises(BilatError, match="acts on text"):
        wordswap(0.1).apply(torch.zeros(1, 1, 2, 2), torch.zeros(1), None, None)
    result = CliRunner().invoke(cli, ["wordswap", "--rates", "0,x", "model.safetensors"])
    assert result.exit_code == 2


def independent_perplexity(model: torch.nn.Module, ids: torch.Tensor, context: int, stride: int = 1) -> float:
    """exp(sum NLL / words): target t (t >= 1) predicted, one forward pass each, from the ids since
    0 when t <= context, else since the start of the window that scores it: window k > 0 ends at
    e_k = context + k * stride (the last at len(ids) - 1) and starts context ids earlier."""
    total = 0.0
    model.eval()
    with torch.no_grad():
        for t in range(1, len(ids)):
            end = context + stride * math.ceil((t - context) / stride) if t > context else t
            start = 0 if t <= context else min(end, len(ids) - 1) - context
            logits = model(ids[start:t].unsqueeze(0))[0, -1]
            total -= float(F.log_softmax(logits.double(), dim=-1)[ids[t]])
    return math.exp(total / (len(ids) - 1))


@pytest.mark.slow
@pytest.mark.parametrize("stride", [1, 5])
def test_perplexity_is_exp_of_mean_nll_recomputed_from_logits(language_checkpoints, tmp_path, stride):
    path = str(language_checkpoints["bilateral"])
    checkpoint = load_checkpoint(path)
    words, context = 150, checkpoint.meta["context_length"]
    for threat in (Clean(), wordswap(0.2)):
        cells = plan_cells([describe_checkpoint(path)], [threat], n_examples=words, seed=4, stride=stride)
        (row,) = run_cells(cells, out=tmp_path, batch_size=3)
        ids = load_split("shakespeare", "test", words, checkpoint.meta).ids(threat, 4)
        assert row.metric == "perplexity" and row.n == words - 1
        assert row.params["context"] == context and row.params["stride"] == stride
        assert row.value == pytest.approx(independent_perplexity(checkpoint.model, ids, context, stride), rel=1e-5)


@pytest.mark.slow
def test_rate_zero_gives_the_clean_perplexity_exactly(language_checkpoints, tmp_path):
    infos = [describe_checkpoint(str(path)) for path in language_checkpoints.values()]
    rows = run_cells(plan_cells(infos, [Clean(), wordswap(0.0), wordswap(0.0, "synonym")], n_examples=N_WORDS),
                     out=tmp_path, batch_size=16)
    for clean, *swapped in (rows[0:3], rows[3:6]):
        assert clean.threat == "clean" and clean.variant == swapped[0].variant
        for row in swapped:
            assert (row.value, row.ci_low, row.ci_high) == (clean.value, clean.ci_low, clean.ci_high)


@pytest.mark.slow
def test_clean_evaluation_of_the_whole_split_is_the_training_test_perplexity(language_checkpoints, tmp_path):
    """Training's end-of-epoch metric is the strided approximation: ``--stride context // 2`` reproduces it."""
    path = language_checkpoints["softmax"]
    stride = read_metadata(path)["context_length"] // 2
    result = CliRunner().invoke(cli, ["--out", str(tmp_path), "--quiet", "evaluate", "--batch-size", "64",
                                      "--stride", str(stride), str(path)])
    assert result.exit_code == 0, result.output
    (row,) = ResultStore.for_run(tmp_path, "main").rows()
    assert row.value == pytest.approx(read_metadata(path)["metrics"]["test_perplexity"], rel=1e-6)


@pytest.mark.slow
def test_the_command_prints_one_table_of_variants_by_rates_from_stored_rows(language_checkpoints, tmp_path):
    paths = [str(path) for path in language_checkpoints.values()]
    args = ["--out", str(tmp_path), "wordswap", *paths, "--rates", "0,0.05,0.2", "--n-examples", str(N_WORDS)]
    result = CliRunner().invoke(cli, args, terminal_width=250, env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    with ResultStore.for_run(tmp_path, "main") as store:
        rows = store.rows()
    assert len(rows) == 6 and {row.threat for row in rows} == {"wordswap"}
    assert result.output.count("┏") == 1 and "word swap 'aaa'" in result.output
    header = next(line for line in result.output.splitlines() if "rate=0 " in line)
    assert header.index("rate=0 ") < header.index("rate=0.05") < header.index("rate=0.2")
    for variant in ("softmax", "bilateral"):
        line = next(line for line in result.output.splitlines() if line.lstrip("┃│ ").startswith(f"{variant} "))
        texts = [row.value_text() for row in sorted((r for r in rows if r.variant == variant), key=lambda r: r.params["rate"])]
        assert [line.index(text) for text in texts] == sorted(line.index(text) for text in texts)
    again = CliRunner().invoke(cli, args, terminal_width=250, env={"COLUMNS": "250"})
    assert again.output == result.output


@pytest.mark.slow
def test_swapping_more_words_raises_the_smoke_perplexity_with_more_aaa_tokens(language_checkpoints, tmp_path):
    """``AAA`` is a vocabulary word the training text never holds: more swaps, more ``AAA`` ids, higher perplexity."""
    rates = (0.0, 0.05, 0.2)
    infos = [describe_checkpoint(str(path)) for path in language_checkpoints.values()]
    rows = run_cells(plan_cells(infos, [wordswap(rate) for rate in rates], n_examples=N_WORDS), out=tmp_path, batch_size=16)
    text = load_split("shakespeare", "test", N_WORDS, infos[0].meta)
    aaa_id = WordVocab.from_list(infos[0].meta["vocab"]).index("AAA")
    swapped = [int((text.ids(wordswap(rate), 0) == aaa_id).sum()) for rate in rates]
    assert 0 == swapped[0] < swapped[1] < swapped[2]
    for variant_rows in (rows[:3], rows[3:]):
        values = [row.value for row in variant_rows]
        assert values[0] < values[1] < values[2]
