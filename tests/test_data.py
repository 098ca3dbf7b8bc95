"""The data layer on real files: Fashion-MNIST, Shakespeare, the tiny sets and user sources."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from robustbench_bilateral.data import image_tensors, load_source, text_lines
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import BilatError, InputError


def test_fmnist_has_official_counts_and_balanced_classes(fmnist):
    train, test = fmnist.split("train"), fmnist.split("test")
    assert (len(train), len(test)) == (60_000, 10_000)
    assert set(Counter(train["label"]).values()) == {6_000}
    assert fmnist.meta.classes[9] == "Ankle boot" and fmnist.meta.image_size == 28


def test_fmnist_tensors_are_unit_range_images_in_file_order(fmnist):
    images, labels = image_tensors(fmnist.split("test"), 16)
    assert images.shape == (16, 1, 28, 28) and images.dtype == torch.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.max() == 1.0
    assert labels[:5].tolist() == [9, 2, 1, 1, 6]


def test_shakespeare_split_by_work_keeps_hamlet_in_test():
    source = load_source("shakespeare")
    assert source.meta.task is Task.LANGUAGE_MODELING
    splits = {name: source.split(name) for name in source.meta.splits}
    works = {name: set(split["work"]) for name, split in splits.items()}
    assert len(works["train"] | works["valid"] | works["test"]) == 42
    assert not works["train"] & works["test"] and not works["valid"] & works["test"]
    assert "To be, or not to be,--that is the question:--" in text_lines(splits["test"])
    assert "Now is the winter of our discontent" in text_lines(splits["train"])


@pytest.mark.parametrize("name, sizes, side", [("mnist5k", (4_000, 1_000), 28), ("digits", (1_437, 360), 8)])
def test_tiny_sets_split_every_fifth_example_to_test(name, sizes, side):
    source = load_source(name)
    assert (len(source.split("train")), len(source.split("test"))) == sizes
    images, labels = image_tensors(source.split("test"))
    assert images.shape[1:] == (1, side, side)
    assert set(labels.tolist()) == set(range(10))


def test_npy_source_reads_arrays_of_other_names_as_plain_splits(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8))
    np.save(tmp_path / "labels.npy", rng.integers(0, 10, 20))
    source = load_source(f"npy:{tmp_path}")
    assert source.meta.splits == ("a", "b") and source.meta.channels == 3
    images, labels = image_tensors(source.split("b"), 5)
    expected = torch.from_numpy(np.load(tmp_path / "b.npy")[:5]).permute(0, 3, 1, 2).float() / 255
    assert torch.equal(images, expected) and labels.tolist() == np.load(tmp_path / "labels.npy")[:5].tolist()


def test_imagefolder_source_reads_class_folders(tmp_path):
    from PIL import Image

    for label, colour in (("cat", 40), ("dog", 200)):
        (tmp_path / label).mkdir()
        for index in range(3):
            Image.new("RGB", (40, 30), (colour, index, 0)).save(tmp_path / label / f"{index}.png")
    source = load_source(f"imagefolder:{tmp_path}")
    assert source.meta.classes == ("cat", "dog") and source.meta.splits == ("test",)
    images, labels = image_tensors(source.split("test"), image_size=24)
    assert images.shape == (6, 3, 24, 24) and sorted(labels.tolist()) == [0, 0, 0, 1, 1, 1]


def test_unknown_sources_and_splits_name_the_fix(fmnist, tmp_path):
    with pytest.raises(InputError, match="unknown dataset 'cifar10': choose one of fmnist"):
        load_source("cifar10")
    with pytest.raises(InputError, match="has no split 'val': choose one of train, test"):
        fmnist.split("val")
    with pytest.raises(InputError, match="labels.npy"):
        load_source(f"npy:{tmp_path}")
    with pytest.raises(BilatError, match="download it once while online"):
        load_source("hf:no-such-owner/no-such-dataset")


def test_missing_package_files_say_which_package_provides_them(tmp_path, monkeypatch):
    monkeypatch.setenv("BILAT_EVAL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BILAT_EVAL_FMNIST", str(tmp_path / "none"))
    monkeypatch.setenv("BILAT_EVAL_SHAKESPEARE", str(tmp_path / "none"))
    with pytest.raises(BilatError, match="install the Debian package dataset-fashion-mnist"):
        load_source("fmnist").split("test")
    with pytest.raises(BilatError, match="run `make data`"):
        load_source("shakespeare").split("test")
