"""Pre-rendered corruption sets read as they are: CIFAR-10-C arrays (``npy:DIR``) and ImageNet-C folders
(``imagefolder:DIR``), through the real CLI, batch specs and ``rb.evaluate``, and the mCE rules on them.

The sets are built here from real data (Fashion-MNIST test images, scikit-learn's sample photos)
corrupted by the project's own corruptions; every expected value is computed from the stored
arrays and pictures, independently of the code under test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from report_rows import stored_rows, table_row
from torch import nn

import robustbench_bilateral as rb
from cli.main import cli
from robustbench_bilateral.batch import plan_batch
from robustbench_bilateral.checkpoint import load_checkpoint
from robustbench_bilateral.corruptions import apply_corruption
from robustbench_bilateral.data import image_tensors, load_source, prerendered_set
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.rng import ExampleRNG

N = 40
NAMES = ("gaussian_noise", "contrast", "pixelate")
SEVERITIES = (1, 2, 3, 4, 5)
VARIANTS = ("softmax", "bilateral")
WIDE = {"COLUMNS": "250"}


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, env=WIDE)


def one_line_error(result, named: str, while_running: bool = False) -> None:
    """Exit code 2 and one ``error:`` line naming ``named``; an error found while running follows the
    progress bar's cleared line."""
    output = result.output.removeprefix("\n") if while_running else result.output
    assert result.exit_code == 2, result.output
    assert output.startswith("error: ") and output.count("\n") == 1 and named in output, result.output


def render(images: torch.Tensor, name: str) -> np.ndarray:
    """``images`` (N, C, H, W) in [0, 1] under ``name`` at severities 1-5, stacked as uint8 (5 N, H, W, C)."""
    blocks = [apply_corruption(name, images, severity, ExampleRNG(7, range(len(images)))) for severity in SEVERITIES]
    stacked = torch.cat(blocks).mul(255).round().clamp(0, 255).to(torch.uint8)
    return stacked.permute(0, 2, 3, 1).numpy()


@pytest.fixture(scope="module")
def clean_fmnist():
    """The first ``N`` Fashion-MNIST test images (float (N, 1, 28, 28)) and labels, by the project's loader."""
    return image_tensors(load_source("fmnist").split("test"), N)


@pytest.fixture(scope="module")
def cifar_c(clean_fmnist, tmp_path_factory) -> Path:
    """A CIFAR-10-C-shaped folder: ``<corruption>.npy`` of 5 x N grey uint8 images (N, H, W), ``labels.npy`` of N."""
    folder = tmp_path_factory.mktemp("cifar-c")
    images, labels = clean_fmnist
    for name in NAMES:
        np.save(folder / f"{name}.npy", render(images, name)[..., 0])
    np.save(folder / "labels.npy", labels.numpy())
    return folder


def block(folder: Path, name: str, severity: int) -> np.ndarray:
    """Severity block ``severity`` of ``<name>.npy``, read here with numpy alone."""
    stored = np.load(folder / f"{name}.npy")
    size = len(stored) // 5
    return stored[(severity - 1) * size:severity * size]


def correct_count(model: nn.Module, pixels: np.ndarray, labels: np.ndarray) -> int:
    """Correct predictions of ``model`` on uint8 pictures (n, H, W) or (n, H, W, C), computed directly."""
    tensor = torch.from_numpy(pixels).float().div(255)
    tensor = tensor.unsqueeze(1) if tensor.dim() == 3 else tensor.permute(0, 3, 1, 2)
    with torch.no_grad():
        predicted = model.eval()(tensor).argmax(-1)
    return int((predicted == torch.as_tensor(labels)).sum())


@pytest.fixture(scope="module")
def contaminated(smoke_checkpoints, cifar_c, tmp_path_factory):
    """``contaminate --dataset npy:DIR --clean-data fmnist`` on the softmax and bilateral smoke checkpoints."""
    out = tmp_path_factory.mktemp("out")
    paths = [str(smoke_checkpoints[variant]) for variant in VARIANTS]
    result = invoke("--out", str(out), "contaminate", *paths, "--dataset", f"npy:{cifar_c}", "--clean-data", "fmnist",
                    "--n-examples", str(N))
    assert result.exit_code == 0, result.output
    return out, result.output, paths


def test_a_cifar_c_folder_gives_one_row_per_corruption_and_severity(contaminated, cifar_c, clean_fmnist):
    out, _, paths = contaminated
    rows = stored_rows(out)
    source = f"npy:{cifar_c}"
    for path in paths:
        model = load_checkpoint(path).model
        mine = [row for row in rows if row.checkpoint == path and row.metric == "accuracy"]
        corrupted = [row for row in mine if row.threat == "corruption"]
        assert sorted((row.params["corruption"], row.params["severity"]) for row in corrupted) == sorted(
            (name, severity) for name in NAMES for severity in SEVERITIES)
        assert all(row.params["rendered"] == source and row.dataset == "fmnist" and row.split == "test" and row.n == N
                   and row.threat_family.value == "corruption" for row in corrupted)
        for row in corrupted:
            expected = correct_count(model, block(cifar_c, row.params["corruption"], row.params["severity"]),
                                     np.load(cifar_c / "labels.npy"))
            assert row.n_correct == expected and row.value == expected / N
        (clean,) = [row for row in mine if row.threat == "clean"]
        assert clean.dataset == "fmnist" and clean.n_correct == correct_count(
            model, clean_fmnist[0].mul(255).round().to(torch.uint8).squeeze(1).numpy(), clean_fmnist[1].numpy())


def test_the_mce_of_a_cifar_c_folder_equals_an_independent_computation(contaminated):
    out, output, _ = contaminated
    rows = [row for row in stored_rows(out) if row.metric == "accuracy"]
    errors: dict[tuple[str, str], float] = {}
    clean: dict[str, float] = {}
    for row in rows:
        if row.threat == "clean":
            clean[row.variant] = 1 - row.n_correct / row.n
        else:
            key = (row.variant, row.params["corruption"])
            errors[key] = errors.get(key, 0.0) + 1 - row.n_correct / row.n
    ces = [errors["bilateral", name] / errors["softmax", name] for name in NAMES]
    relative = [(errors["bilateral", name] - 5 * clean["bilateral"]) / (errors["softmax", name] - 5 * clean["softmax"])
                for name in NAMES]
    cells = table_row(output, "bilateral")
    assert "mCE vs softmax" in output and "rel. mCE vs softmax" in output and "(pre-rendered)" in output
    assert cells[-2] == f"{sum(ces) / len(ces):.3f}"
    assert cells[-1] == (f"{sum(relative) / len(relative):.3f}" if all(map(math.isfinite, relative)) else "n/a")
    assert table_row(output, "softmax")[-2] == "1.000"


def test_pre_rendered_rows_never_share_a_cell_with_on_the_fly_ones(contaminated, smoke_checkpoints):
    out, _, paths = contaminated
    result = invoke("--out", str(out), "contaminate", paths[0], "--dataset", "fmnist", "--corruptions", "contrast",
                    "--severities", "2", "--n-examples", str(N))
    assert result.exit_code == 0, result.output
    contrast = [row for row in stored_rows(out) if row.checkpoint == paths[0] and row.metric == "accuracy"
                and row.params.get("corruption") == "contrast" and row.params["severity"] == 2]
    assert len(contrast) == 2 and len({row.cell_key for row in contrast}) == 2
    assert sorted(str(row.params.get("rendered")) for row in contrast)[1].startswith("npy:")
    assert "CE (sev. 2) vs softmax" in result.output and "mCE" not in result.output


def test_the_python_api_and_batch_specs_read_a_cifar_c_folder_within_each_block(smoke_checkpoints, cifar_c, tmp_path):
    path = str(smoke_checkpoints["softmax"])
    threats = ["clean", {"name": "corruption", "corruption": "contrast", "severity": [2, 5]}]
    frame = rb.evaluate(path, f"npy:{cifar_c}", threats, clean_data="fmnist", n_examples=12)
    accuracy = frame[frame.metric == "accuracy"]
    model = load_checkpoint(path).model
    labels = np.load(cifar_c / "labels.npy")[:12]
    for severity in (2, 5):
        (row,) = accuracy[(accuracy.threat == "corruption") & (accuracy.severity == severity)].itertuples()
        assert row.n == 12 and row.n_correct == correct_count(model, block(cifar_c, "contrast", severity)[:12], labels)
    assert set(accuracy.dataset) == {"fmnist"}

    spec = tmp_path / "cifar-c.toml"
    spec.write_text(f'dataset = "npy:{cifar_c}"\nclean_dataset = "fmnist"\ncheckpoints = ["{path}"]\n'
                    '[[threats]]\nname = "clean"\n[[threats]]\nname = "corruption"\ncorruption = ["fog", "pixelate"]\n'
                    'severity = [1, 2, 3, 4, 5]\n')
    with pytest.raises(InputError, match=r"threats\[1\]\.corruption: .* has no fog: choose one of"):
        plan_batch(spec)
    spec.write_text(spec.read_text().replace('"fog", ', ""))
    cells = plan_batch(spec).cells
    assert [cell.threat.params.get("rendered") for cell in cells] == [None] + [f"npy:{cifar_c}"] * 5
    assert {cell.dataset for cell in cells} == {"fmnist"}


def test_labels_for_every_image_and_unknown_stems_as_plain_splits(cifar_c, tmp_path):
    for name in ("contrast", "brightness"):
        np.save(tmp_path / f"{name}.npy", np.load(cifar_c / "contrast.npy"))
    np.save(tmp_path / "test.npy", block(cifar_c, "contrast", 1))
    labels = np.load(cifar_c / "labels.npy")
    np.save(tmp_path / "labels.npy", labels)
    found = prerendered_set(f"npy:{tmp_path}")
    assert found is not None and found.corruptions == ("brightness", "contrast") and found.block_size("contrast", 3) == N
    assert load_source(f"npy:{tmp_path}").meta.splits == ("test",)
    alone = prerendered_set(f"npy:{tmp_path / 'contrast.npy'}")
    assert alone is not None and alone.corruptions == ("contrast",)
    with pytest.raises(InputError, match="holds only pre-rendered corruptions"):
        load_source(f"npy:{tmp_path / 'contrast.npy'}")
    picked = [3, 0, 39]
    assert np.array_equal(found.pixels("contrast", 4, picked, 1)[..., 0], block(cifar_c, "contrast", 4)[picked])
    per_image = np.concatenate([labels[::-1]] * 5)
    per_image[3 * N + 5] = 9
    np.save(tmp_path / "labels.npy", per_image)
    found = prerendered_set(f"npy:{tmp_path}")
    assert found is not None
    assert found.labels("contrast", 4, [5])[0] == 9 and found.labels("contrast", 1, [5])[0] == labels[::-1][5]
    with pytest.raises(InputError, match="holds 40 contrast images per severity but example 40 was asked"):
        found.labels("contrast", 2, [40])


@pytest.mark.parametrize("damage, named", [
    (lambda folder: np.save(folder / "contrast.npy", np.load(folder / "contrast.npy")[:-1]), "contrast.npy holds 199 images"),
    (lambda folder: np.save(folder / "labels.npy", np.zeros(7, dtype=np.int64)), "labels.npy holds 7 labels"),
    (lambda folder: np.save(folder / "labels.npy", (np.load(folder / "labels.npy") + 1) % 10), "is labelled"),
])
def test_a_broken_cifar_c_folder_is_a_one_line_error(smoke_checkpoints, cifar_c, tmp_path, damage, named):
    folder = tmp_path / "set"
    folder.mkdir()
    for file in cifar_c.iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    damage(folder)
    result = invoke("--out", str(tmp_path), "contaminate", str(smoke_checkpoints["softmax"]), "--dataset",
                    f"npy:{folder}", "--clean-data", "fmnist", "--corruptions", "contrast", "--n-examples", "8")
    one_line_error(result, named, while_running=named == "is labelled")


def test_a_folder_of_corruptions_alone_is_no_clean_split(smoke_checkpoints, cifar_c, tmp_path):
    with pytest.raises(InputError, match="holds only pre-rendered corruptions .*`bilat-eval contaminate CHECKPOINT"):
        load_source(f"npy:{cifar_c}")
    result = invoke("--out", str(tmp_path), "evaluate", str(smoke_checkpoints["softmax"]), "--dataset", f"npy:{cifar_c}")
    one_line_error(result, "holds pre-rendered corruptions, which only corruption threats read")
    result = invoke("--out", str(tmp_path), "contaminate", str(smoke_checkpoints["softmax"]), "--clean-data", "fmnist")
    one_line_error(result, "--clean-data goes with a pre-rendered --dataset")
    assert not (tmp_path / "main").exists()


def imagenet_c_shaped(root: Path, classes: int, size: int, severities=SEVERITIES) -> None:
    """Folders ``fog/<s>/<class>/`` for ``classes`` classes, one ``size`` px picture in the first class only."""
    for severity in severities:
        for index in range(classes):
            (root / "fog" / str(severity) / f"n{index:05d}").mkdir(parents=True)
    Image.new("RGB", (size, size), (90, 120, 30)).save(root / "fog" / "1" / "n00000" / "a.png")


def test_mce_refusals_through_the_cli(smoke_checkpoints, tmp_path):
    checkpoint = str(smoke_checkpoints["softmax"])
    imagenet_c, tiny = tmp_path / "imagenet-c", tmp_path / "tiny-imagenet-c"
    imagenet_c_shaped(imagenet_c, 1000, 224)
    imagenet_c_shaped(tiny, 3, 64)
    result = invoke("--out", str(tmp_path), "contaminate", checkpoint, "--dataset", f"imagefolder:{imagenet_c}",
                    "--clean-data", "fmnist", "--severities", "1,3")
    one_line_error(result, "needs all five severities")
    result = invoke("--out", str(tmp_path), "contaminate", checkpoint, "--dataset", f"imagefolder:{tiny}",
                    "--clean-data", "fmnist", "--baseline", "alexnet")
    one_line_error(result, "AlexNet's errors are ImageNet-C's")
    result = invoke("--out", str(tmp_path), "contaminate", checkpoint, "--baseline", "alexnet", "--corruptions", "fog")
    one_line_error(result, "AlexNet's errors are ImageNet-C's")
    result = invoke("--out", str(tmp_path), "contaminate", checkpoint, "--imagenet-c-approx", "--corruptions", "fog")
    one_line_error(result, "--imagenet-c-approx needs 224 px inputs")
    result = invoke("--out", str(tmp_path), "contaminate", checkpoint, "--dataset", f"imagefolder:{imagenet_c}",
                    "--clean-data", "fmnist", "--imagenet-c-approx")
    one_line_error(result, "--imagenet-c-approx is for corruptions rendered on the fly")
    (imagenet_c / "fog" / "4").rename(imagenet_c / "fog" / "9")
    result = invoke("--out", str(tmp_path), "contaminate", checkpoint, "--dataset", f"imagefolder:{imagenet_c}",
                    "--clean-data", "fmnist")
    one_line_error(result, "has no severity folder 4")
    assert not (tmp_path / "main").exists()


class ColourNet(nn.Module):
    """A small fixed-weight colour classifier of any picture size: 3x3 convolution, average pool, 2 classes."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(3)
        self.conv = nn.Conv2d(3, 6, 3)
        self.head = nn.Linear(6, 2)
        with torch.no_grad():
            for parameter in self.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.conv(images)).mean(dim=(2, 3)))


def test_an_imagenet_c_folder_reads_every_severity_through_the_api(tmp_path):
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    crops = {f"class{label}": [photo[40 * k:40 * k + 32, 50 * k:50 * k + 32] for k in range(1, 4)]
             for label, photo in enumerate(photos)}
    clean_root, rendered_root = tmp_path / "clean", tmp_path / "rendered"
    for label, pictures in crops.items():
        (clean_root / label).mkdir(parents=True)
        for k, picture in enumerate(pictures):
            Image.fromarray(picture).save(clean_root / label / f"{k}.png")
    for name in ("gaussian_noise", "fog"):
        for label, pictures in crops.items():
            tensor = torch.from_numpy(np.stack(pictures)).permute(0, 3, 1, 2).float() / 255
            stacked = render(tensor, name)
            for severity in SEVERITIES:
                folder = rendered_root / name / str(severity) / label
                folder.mkdir(parents=True)
                for k in range(len(pictures)):
                    Image.fromarray(stacked[(severity - 1) * len(pictures) + k]).save(folder / f"{k}.png")
    model = ColourNet()
    frame = rb.evaluate(model, f"imagefolder:{rendered_root}", ["clean", {"name": "corruption", "corruption": ["gaussian_noise", "fog"],
                        "severity": list(SEVERITIES)}], clean_data=f"imagefolder:{clean_root}")
    accuracy = frame[(frame.metric == "accuracy") & (frame.threat == "corruption")]
    assert len(accuracy) == 10 and set(accuracy.dataset) == {f"imagefolder:{clean_root}"}
    assert (accuracy.rendered == f"imagefolder:{rendered_root}").all()
    assert sorted(zip(accuracy.corruption, accuracy.severity)) == sorted((name, s) for name in ("fog", "gaussian_noise") for s in SEVERITIES)
    labels = np.repeat([0, 1], 3)
    for row in accuracy.itertuples():
        pictures = np.stack([np.asarray(Image.open(rendered_root / row.corruption / str(row.severity) / label / f"{k}.png"))
                             for label in crops for k in range(3)])
        assert row.n == 6 and row.n_correct == correct_count(model, pictures, labels)
    found = prerendered_set(f"imagefolder:{rendered_root}")
    assert found is not None and not found.imagenet_c and found.corruptions == ("fog", "gaussian_noise")
    with pytest.raises(InputError, match="clean_data"):
        rb.evaluate(model, f"imagefolder:{rendered_root}", ["clean"])
