"""What a training run learns from: batches, loss and held-out metric for images and for text."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from robustbench_bilateral.data import DataMeta, DataSource, image_tensors, text_lines
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import FieldError, InputError
from robustbench_bilateral.models.lm import CausalLM
from robustbench_bilateral.preprocessing import Preprocessing
from robustbench_bilateral.results.stats import perplexity
from robustbench_bilateral.rng import example_seed
from robustbench_bilateral.text import WordVocab, sliding_window_nll
from robustbench_bilateral.training.recipes import Recipe

EVAL_BATCH = 256


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that orders epoch ``epoch``'s batches: a resumed run replays the same order."""
    return torch.Generator().manual_seed(example_seed(seed, epoch))


def data_preprocessing(meta: DataMeta, overrides: Mapping[str, Any] | None = None) -> Preprocessing:
    """The preprocessing a model of this data trains with: the data's mean/std and image size,
    ``Preprocessing``'s default resize and interpolation, then ``overrides``; mean/std need one
    value per channel of the data."""
    preprocessing = Preprocessing(tuple(meta.mean), tuple(meta.std), meta.image_size).with_overrides(overrides or {})
    if len(preprocessing.mean) != meta.channels:
        raise FieldError("mean", f"needs {meta.channels} value(s), one per channel of '{meta.name}', "
                                 f"got {len(preprocessing.mean)}")
    return preprocessing


def image_model_kwargs(meta: DataMeta, preprocessing: Preprocessing) -> dict[str, Any]:
    """What an image model takes from its data: input size and channels, class count, mean/std."""
    return {
        "img_size": meta.image_size,
        "in_chans": meta.channels,
        "num_classes": len(meta.classes),
        "mean": preprocessing.mean,
        "std": preprocessing.std,
    }


class ImageTask:
    """Image classification: shuffled mini-batches, cross-entropy, accuracy on the test split.

    Decoded pictures are resized and centre-cropped by ``preprocessing`` (``data_preprocessing``
    of the data with ``preprocessing_overrides``); its mean/std become the model's.
    """

    kind = "image"

    def __init__(self, source: DataSource, recipe: Recipe, preprocessing_overrides: Mapping[str, Any] | None = None) -> None:
        self.source = source
        self.recipe = recipe
        self.preprocessing = data_preprocessing(source.meta, preprocessing_overrides)
        self.train_images, self.train_labels = self._tensors("train")
        eval_split = "test" if "test" in source.meta.splits else source.meta.splits[-1]
        self.eval_split = eval_split
        self.eval_images, self.eval_labels = self._tensors(eval_split)
        self.mixing = None
        if recipe.mixup or recipe.cutmix:
            from timm.data import Mixup

            self.mixing = Mixup(
                mixup_alpha=recipe.mixup,
                cutmix_alpha=recipe.cutmix,
                label_smoothing=recipe.label_smoothing,
                num_classes=len(source.meta.classes),
            )

    def _tensors(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return image_tensors(self.source.split(split), image_size=self.source.meta.image_size,
                             preprocessing=self.preprocessing)

    def model_kwargs(self) -> dict:
        return image_model_kwargs(self.source.meta, self.preprocessing)

    def checkpoint_fields(self, model_kwargs: Mapping[str, Any]) -> dict:
        """Task, and the normalisation and preprocessing of the trained model (its own mean/std)."""
        mean, std = list(model_kwargs["mean"]), list(model_kwargs["std"])
        preprocessing = self.preprocessing.with_overrides({"mean": tuple(mean), "std": tuple(std)})
        return {"task": Task.IMAGE_CLASSIFICATION.value, "normalization": {"mean": mean, "std": std},
                "preprocessing": preprocessing.to_dict()}

    def steps_per_epoch(self) -> int:
        return self.recipe.steps_per_epoch or len(self.train_labels) // self.recipe.batch_size

    def batches(self, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self.train_labels), generator=epoch_generator(seed, epoch))
        size = self.recipe.batch_size
        for step in range(self.steps_per_epoch()):
            index = order[step * size : (step + 1) * size]
            yield self.train_images[index], self.train_labels[index]

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        """Cross-entropy with label smoothing; with Mixup/CutMix (timm), soft-target cross-entropy."""
        images, labels = batch
        if self.mixing is None:
            return F.cross_entropy(model(images), labels, label_smoothing=self.recipe.label_smoothing)
        images, targets = self.mixing(images, labels)
        return torch.sum(-targets * F.log_softmax(model(images), dim=-1), dim=-1).mean()

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Top-1 accuracy (fraction) on the evaluation split."""
        correct = 0
        for start in range(0, len(self.eval_labels), EVAL_BATCH):
            images = self.eval_images[start : start + EVAL_BATCH].to(device)
            labels = self.eval_labels[start : start + EVAL_BATCH].to(device)
            correct += int((model(images).argmax(-1) == labels).sum())
        return {f"{self.eval_split}_accuracy": correct / len(self.eval_labels)}


class LanguageTask:
    """Word-level language modelling: random windows of the training stream, per-word perplexity."""

    kind = "language"

    def __init__(self, source: DataSource, recipe: Recipe) -> None:
        self.source = source
        self.recipe = recipe
        train_lines = text_lines(source.split("train"))
        self.vocab = WordVocab.build(train_lines, max_size=recipe.vocab_size)
        self.train_ids = self.vocab.encode_lines(train_lines)
        self.test_ids = self.vocab.encode_lines(text_lines(source.split("test")))
        self.context = int(recipe.model_kwargs.get("context_length", 128))
        self.unigram_test_perplexity = self.unigram_perplexity()

    def model_kwargs(self) -> dict:
        return {"vocab_size": len(self.vocab)}

    def checkpoint_fields(self, model_kwargs: Mapping[str, Any]) -> dict:
        """Task, vocabulary, context and the unigram baseline (``model_kwargs`` add nothing here)."""
        return {
            "task": Task.LANGUAGE_MODELING.value,
            "vocab": self.vocab.to_list(),
            "context_length": self.context,
            "unigram_test_perplexity": self.unigram_test_perplexity,
        }

    def steps_per_epoch(self) -> int:
        return self.recipe.steps_per_epoch or len(self.train_ids) // (self.context * self.recipe.batch_size)

    def batches(self, seed: int, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = epoch_generator(seed, epoch)
        span = self.context + 1
        for _ in range(self.steps_per_epoch()):
            starts = torch.randint(0, len(self.train_ids) - span, (self.recipe.batch_size,), generator=generator)
            windows = torch.stack([self.train_ids[s : s + span] for s in starts.tolist()])
            yield windows[:, :-1], windows[:, 1:]

    def loss(self, model: nn.Module, batch) -> torch.Tensor:
        inputs, targets = batch
        logits = model(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    @torch.no_grad()
    def evaluate(self, model: nn.Module, device: torch.device) -> dict[str, float]:
        """Per-word test perplexity ``exp(sum NLL / words)`` from the sliding window with stride
        ``context // 2``: the cheap approximation (each word sees at least ``context // 2 + 1``
        tokens of left context, ``text.windows``), not the full-context metric ``evaluate`` reports."""
        nll, counts = sliding_window_nll(cast(CausalLM, model), self.test_ids, self.context, stride=self.context // 2, batch_size=64,
                                         device=device)
        return {"test_perplexity": perplexity(nll.cpu().numpy(), counts.cpu().numpy())}

    def unigram_perplexity(self) -> float:
        """Perplexity of the training unigram distribution on the test stream (same vocabulary)."""
        counts = Counter(self.train_ids.tolist())
        total = sum(counts.values())
        log_prob = sum(math.log(counts.get(token, 0.5) / total) for token in self.test_ids.tolist())
        return math.exp(-log_prob / len(self.test_ids))


def task_kind(source: DataSource) -> str:
    """``"language"`` for text sources, ``"image"`` otherwise: the key of the recipe presets."""
    return "language" if source.meta.task is Task.LANGUAGE_MODELING else "image"


def build_task(source: DataSource, recipe: Recipe,
               preprocessing_overrides: Mapping[str, Any] | None = None) -> ImageTask | LanguageTask:
    """The training task of a source: language modelling for text, classification for images.

    ``preprocessing_overrides`` (``Preprocessing`` fields) apply to images only; for text they
    are a ``FieldError`` on ``preprocessing``.
    """
    if "train" not in source.meta.splits:
        raise InputError(f"dataset '{source.meta.name}' has no train split: give a source with train and test splits")
    if task_kind(source) == "image":
        return ImageTask(source, recipe, preprocessing_overrides)
    if preprocessing_overrides:
        raise FieldError("preprocessing", f"{', '.join(preprocessing_overrides)} apply to image data only: leave them out for text")
    return LanguageTask(source, recipe)
