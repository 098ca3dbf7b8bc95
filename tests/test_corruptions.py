"""Common corruptions and additive noises on real images: 8 Fashion-MNIST test images (28 px, grey,
CIFAR-10-C tables) and two RGB photographs from matplotlib's sample data at 32 px (CIFAR-10-C
tables) and 128 px (ImageNet-C tables)."""

from __future__ import annotations

import math
from functools import lru_cache

import matplotlib.image
import numpy as np
import pytest
import scipy.ndimage
import scipy.stats
import torch
import torch.nn.functional as F
from matplotlib import cbook
from PIL import Image

from robustbench_bilateral.corruptions import (
    CORRUPTIONS,
    NOISES,
    SEVERITIES,
    Corruption,
    Level,
    apply_corruption,
    apply_noise,
    regime_for,
    resolve_corruptions,
)
from robustbench_bilateral.corruptions.digital import box_resize_matrix, box_shrink_rows, box_shrink_taps
from robustbench_bilateral.corruptions.filters import arange_factors, clipped_zoom, shift_sum, shuffle_order
from robustbench_bilateral.corruptions.jpeg import jpeg_round_trip
from robustbench_bilateral.corruptions.noise import cornish_fisher_start, poisson_quantile, poisson_steps
from robustbench_bilateral.corruptions.preview import (
    HEADER_HEIGHT,
    LABEL_WIDTH,
    cell_scale,
    preview_grid,
    save_preview_png,
)
from robustbench_bilateral.corruptions.severity import level
from robustbench_bilateral.corruptions.spatter import CHAMFER_COSTS, CHAMFER_SCALE, canny, chamfer_distance
from robustbench_bilateral.data.fmnist import read_idx
from robustbench_bilateral.errors import FieldError
from robustbench_bilateral.paths import fmnist_dir
from robustbench_bilateral.rng import ExampleRNG
from robustbench_bilateral.threats import build_threat

SEED, OTHER_SEED = 0, 1
PHOTOS = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")

# Severity steps s -> s + 1 whose mean squared change does not grow, per image set, with the reason.
# Every other step must grow strictly; every step listed here must not grow, except the TIES.
NOT_GROWING: dict[tuple[str, str], tuple[int, ...]] = {
    # CIFAR-10-C: sigma 2 in both rows; taps beyond 4 sigma are dropped, so the kernels coincide.
    ("fmnist", "motion_blur"): (3,),
    ("rgb32", "motion_blur"): (3,),
    # More blur before the shuffle makes the shuffled pixels more alike (rows 3 and 5 vs 2 and 4);
    # at 128 px delta 1 and 2 both round to 1 px, so row 2 (one pass) moves less than row 1 (two).
    ("fmnist", "glass_blur"): (2, 4),
    ("rgb32", "glass_blur"): (2, 4),
    ("rgb128", "glass_blur"): (1, 3, 4),
    # Frost rows 3 -> 4 darken the image (0.9 -> 0.85, ImageNet-C 0.7 -> 0.65) under the same frost weight.
    ("fmnist", "frost"): (3,),
    ("rgb32", "frost"): (3,),
    ("rgb128", "frost"): (3,),
    # CIFAR-10-C: the affine shift (8 % -> 3 % of the side) shrinks faster than the elastic part grows.
    ("fmnist", "elastic_transform"): (1, 2, 3, 4),
    ("rgb32", "elastic_transform"): (1, 2, 3, 4),
    # Water (rows 1-3) brightens whole drops; mud (rows 4-5) covers only their opaque cores (on
    # the light Fashion-MNIST background brown shows less than turquoise).
    ("fmnist", "spatter"): (3,),
    # ImageNet-C water rows 2 -> 3 smooth less (sigma 3 -> 2 px) and paint fainter (0.6 -> 0.5): smaller drops.
    ("rgb128", "spatter"): (2,),
    # Rows 1-2 desaturate (x0.3, x0.1), row 3 saturates (x1.5 or x2).
    ("rgb32", "saturate"): (2,),
    ("rgb128", "saturate"): (2,),
}
# Steps that may go either way: near-equal settings where the aliasing of the resampling or a
# sub-pixel blur decides. Pixelate at 28/32 px keeps 26, 25, 23, 21, 18 / 30, 28, 27, 24, 20 px.
TIES: dict[tuple[str, str], tuple[int, ...]] = {
    ("fmnist", "glass_blur"): (1,),
    ("rgb32", "glass_blur"): (1,),
    ("fmnist", "pixelate"): (1, 2, 3),
    ("rgb32", "pixelate"): (1, 2, 3),
}


def _photo(name: str, size: int) -> torch.Tensor:
    path = cbook.get_sample_data(name, asfileobj=False)
    pixels = torch.from_numpy(matplotlib.image.imread(path).copy()).float()
    pixels = (pixels / 255.0 if pixels.max() > 1 else pixels)[..., :3].permute(2, 0, 1)
    return F.interpolate(pixels[None], size=(size, size), mode="bilinear", antialias=True)[0].clamp(0, 1)


@lru_cache(maxsize=None)
def image_set(key: str) -> torch.Tensor:
    if key == "fmnist":
        raw = read_idx(fmnist_dir() / "t10k-images-idx3-ubyte.gz")[:8]
        return torch.from_numpy(raw.copy()).float().div(255.0).unsqueeze(1)
    size = int(key.removeprefix("rgb"))
    return torch.stack([_photo(name, size) for name in PHOTOS])


@lru_cache(maxsize=None)
def corrupted(key: str, name: str, severity: int, seed: int = SEED) -> torch.Tensor:
    images = image_set(key)
    return apply_corruption(name, images, severity, ExampleRNG(seed, range(len(images))))


def _cases() -> list[tuple[str, str, int]]:
    return [
        (key, name, severity)
        for key in ("fmnist", "rgb32", "rgb128")
        for name, entry in CORRUPTIONS.items()
        if not (key == "fmnist" and entry.colour_only)
        for severity in SEVERITIES
    ]


CASES = _cases()
SERIES = sorted({(key, name) for key, name, _ in CASES})


@pytest.mark.parametrize("key, name, severity", CASES)
def test_output_in_range_with_shape_and_dtype(key, name, severity):
    images, out = image_set(key), corrupted(key, name, severity)
    assert out.shape == images.shape and out.dtype == images.dtype and out.device == images.device
    assert torch.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("key, name, severity", CASES)
def test_image_changes(key, name, severity):
    change = (corrupted(key, name, severity) - image_set(key)).pow(2).mean(dim=(1, 2, 3))
    assert (change > 0).all()


@pytest.mark.parametrize("key, name, severity", CASES)
def test_seed_decides_random_draws(key, name, severity):
    images = image_set(key)
    again = apply_corruption(name, images, severity, ExampleRNG(SEED, range(len(images))))
    assert torch.equal(again, corrupted(key, name, severity))
    other = corrupted(key, name, severity, OTHER_SEED)
    if CORRUPTIONS.get(name).is_random:
        assert not torch.equal(other, again)
    else:
        assert torch.equal(other, again)


@pytest.mark.parametrize("key, name, severity", CASES)
def test_example_output_does_not_depend_on_batch(key, name, severity):
    images, whole = image_set(key), corrupted(key, name, severity)
    alone = apply_corruption(name, images[1:2], severity, ExampleRNG(SEED, [1]))
    reversed_tail = list(range(len(images) - 1, 0, -1))
    tail = apply_corruption(name, images[reversed_tail], severity, ExampleRNG(SEED, reversed_tail))
    torch.testing.assert_close(alone, whole[1:2], atol=1e-5, rtol=0)
    torch.testing.assert_close(tail, whole[reversed_tail], atol=1e-5, rtol=0)


@pytest.mark.parametrize("key, name", SERIES)
def test_mean_squared_change_grows_with_severity(key, name):
    images = image_set(key)
    change = [(corrupted(key, name, s) - images).pow(2).mean().item() for s in SEVERITIES]
    not_growing, ties = NOT_GROWING.get((key, name), ()), TIES.get((key, name), ())
    for step in SEVERITIES[:-1]:
        before, after = change[step - 1], change[step]
        if step in ties:
            continue
        if step in not_growing:
            assert after <= before, f"{name} {step}->{step + 1} grows now: drop it from NOT_GROWING"
        else:
            assert after > before, f"{name} {step}->{step + 1}: {before:.5f} -> {after:.5f}"


def test_float64_input_stays_float64():
    images = image_set("rgb32").double()
    for name in CORRUPTIONS:
        out = apply_corruption(name, images, 3, ExampleRNG(SEED, range(len(images))))
        assert out.dtype == torch.float64 and 0.0 <= out.min() and out.max() <= 1.0


def test_small_and_non_square_images_are_accepted():
    images = torch.rand(2, 3, 8, 13, generator=torch.Generator().manual_seed(0))
    for name in CORRUPTIONS:
        out = apply_corruption(name, images, 5, ExampleRNG(SEED, [0, 1]))
        assert out.shape == images.shape and 0.0 <= out.min() and out.max() <= 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_corruptions_run_on_the_images_device():
    images = image_set("rgb32").cuda()
    for name in CORRUPTIONS:
        out = apply_corruption(name, images, 3, ExampleRNG(SEED, range(len(images)), device="cuda"))
        assert out.device == images.device
        torch.testing.assert_close(out.cpu(), corrupted("rgb32", name, 3), atol=2e-3, rtol=0)


def test_severity_table_rule():
    assert regime_for(28, 28).name == regime_for(47, 500).name == "cifar-10-c"
    assert regime_for(48, 48).name == regime_for(127, 500).name == "tiny-imagenet-c"
    assert regime_for(128, 128).name == regime_for(224, 300).name == "imagenet-c"


@pytest.mark.parametrize("size, fraction, reference", [(28, 0.85, 32), (47, 0.85, 32), (48, 0.7, 64), (127, 0.7, 64), (128, 0.4, 224)])
def test_each_size_reads_its_regimes_table(size, fraction, reference):
    entry = CORRUPTIONS.get("pixelate")
    assert level(entry.small, entry.medium, entry.large, 3, torch.zeros(1, 3, size, 300)) == (fraction, size / reference)


def test_a_corruption_without_a_medium_table_reads_the_small_one_from_48_px():
    entry = Corruption("posterize", "digital", _posterize, (6, 5, 4, 3, 2), (5, 4, 3, 2, 1), is_random=False)
    images = _photo(PHOTOS[0], 64)[None]
    assert torch.equal(entry(images, 1, ExampleRNG(SEED, [0])), (images * 64).floor() / 64)


@pytest.mark.parametrize("source, target", [(32, 30), (32, 20), (30, 32), (224, 56), (56, 224), (64, 45), (28, 26)])
def test_box_resize_matches_pillow(source, target):
    column = np.random.default_rng(source * target).random((source, 3), dtype=np.float32)
    expected = np.asarray(Image.fromarray(column, mode="F").resize((3, target), Image.BOX))
    ours = box_resize_matrix(source, target).float() @ torch.from_numpy(column)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("source, target", [(32, 30), (28, 23), (224, 134), (224, 89), (224, 67), (56, 33), (40, 1)])
def test_box_shrink_taps_give_the_matrix_product(source, target):
    images = torch.rand(2, 3, source, 5, generator=torch.Generator().manual_seed(source + target))
    ours = box_shrink_rows(images, box_shrink_taps(source, target))
    torch.testing.assert_close(ours, box_resize_matrix(source, target).float() @ images, atol=3e-7, rtol=0)


@pytest.mark.parametrize("stop, step", [(1.06, 0.01), (1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03)])
def test_zoom_factors_are_numpys_arange(stop, step):
    assert arange_factors(1.0, stop, step) == np.arange(1, stop, step).tolist()


def test_zoom_factor_lists_end_where_arange_ends():
    assert len(arange_factors(1.0, 1.11, 0.01)) == 12 and len(arange_factors(1.0, 1.06, 0.01)) == 7


@pytest.mark.parametrize("size, factor", [(32, 1.05), (32, 1.25), (28, 1.13), (224, 1.11), (224, 1.3), (64, 1.2)])
def test_clipped_zoom_matches_scipy_zoom_of_the_whole_pixel_crop(size, factor):
    image = _photo(PHOTOS[1], size)
    crop = math.ceil(size / factor)
    top = (size - crop) // 2
    zoomed = scipy.ndimage.zoom(image[:, top : top + crop, top : top + crop].double().numpy(), (1, factor, factor), order=1)
    trim = (zoomed.shape[1] - size) // 2
    expected = torch.from_numpy(zoomed[:, trim : trim + size, trim : trim + size])
    torch.testing.assert_close(clipped_zoom(image.double()[None], factor)[0], expected, atol=1e-9, rtol=0)


def test_glass_shuffle_is_the_references_sequential_swap_statement_on_rgb_arrays():
    height, width, delta = 9, 11, 2
    generator = torch.Generator().manual_seed(3)
    visits = (height - 2 * delta) * (width - 2 * delta)
    offsets = torch.randint(-delta, delta, (2, 3, visits, 2), generator=generator)
    order = shuffle_order(offsets, height, width, delta)
    for example in range(2):
        pixels = np.arange(height * width).reshape(height, width, 1)
        for passed in range(3):
            visit = 0
            for h in range(height - delta, delta, -1):
                for w in range(width - delta, delta, -1):
                    dy, dx = offsets[example, passed, visit].tolist()
                    pixels[h, w], pixels[h + dy, w + dx] = pixels[h + dy, w + dx], pixels[h, w]
                    visit += 1
        assert order[example].tolist() == pixels.reshape(-1).tolist()


@pytest.mark.parametrize("severity", [0, 6, 2.0, True, -1])
def test_severity_outside_1_to_5_is_rejected(severity):
    images = image_set("fmnist")[:1]
    with pytest.raises(ValueError, match="severity must be an integer from 1 to 5"):
        apply_corruption("contrast", images, severity, ExampleRNG(SEED, [0]))


def test_bad_images_and_rng_are_rejected():
    rng = ExampleRNG(SEED, [0])
    with pytest.raises(ValueError, match="1 or 3 channels"):
        apply_corruption("fog", torch.rand(1, 2, 32, 32), 1, rng)
    with pytest.raises(ValueError, match="at least 8 px"):
        apply_corruption("fog", torch.rand(1, 1, 7, 32), 1, rng)
    with pytest.raises(ValueError, match="floating-point"):
        apply_corruption("fog", torch.zeros(1, 1, 32, 32, dtype=torch.uint8), 1, rng)
    with pytest.raises(ValueError, match="rng covers 1 examples but the batch has 2"):
        apply_corruption("fog", torch.rand(2, 1, 32, 32), 1, rng)
    with pytest.raises(ValueError, match="unknown corruption 'rain'"):
        apply_corruption("rain", torch.rand(1, 1, 32, 32), 1, rng)


def test_saturate_is_colour_only():
    with pytest.raises(ValueError, match="needs 3-channel RGB images"):
        apply_corruption("saturate", image_set("fmnist")[:1], 3, ExampleRNG(SEED, [0]))


def test_resolve_sets_groups_and_names():
    assert resolve_corruptions("all") == list(CORRUPTIONS) and len(CORRUPTIONS) == 19
    imagenet_c = resolve_corruptions("imagenet-c")
    assert len(imagenet_c) == 15 and imagenet_c[:3] == ["gaussian_noise", "shot_noise", "impulse_noise"]
    assert resolve_corruptions("held-out") == ["speckle_noise", "gaussian_blur", "spatter", "saturate"]
    assert resolve_corruptions("noise") == ["gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"]
    assert resolve_corruptions(" fog, blur ,fog,zoom_blur") == [
        "fog", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"
    ]
    assert {CORRUPTIONS.get(n).group for n in resolve_corruptions("weather")} == {"weather"}


def test_resolve_for_grey_images_leaves_out_colour_only_corruptions():
    assert "saturate" not in resolve_corruptions("all", channels=1)
    assert len(resolve_corruptions("held-out", channels=1)) == 3
    with pytest.raises(ValueError, match="'saturate' needs RGB images"):
        resolve_corruptions("fog,saturate", channels=1)


def test_resolve_unknown_token_names_it_and_lists_valid_ones():
    with pytest.raises(ValueError) as error:
        resolve_corruptions("fog,gausian_noise")
    message = str(error.value)
    assert "'gausian_noise'" in message and "valid:" in message
    for token in ("all", "imagenet-c", "held-out", "digital", "gaussian_noise", "saturate"):
        assert token in message


@pytest.mark.parametrize("name", sorted(NOISES))
def test_noise_threats_are_seeded_bounded_and_scale_with_strength(name):
    images = image_set("fmnist")
    rng = lambda seed=SEED: ExampleRNG(seed, range(len(images)))  # noqa: E731
    assert torch.equal(apply_noise(name, images, 0.0, rng()), images)
    out = apply_noise(name, images, 0.1, rng())
    assert out.shape == images.shape and out.dtype == images.dtype and 0.0 <= out.min() and out.max() <= 1.0
    assert torch.equal(out, apply_noise(name, images, 0.1, rng()))
    assert not torch.equal(out, apply_noise(name, images, 0.1, rng(OTHER_SEED)))
    change = [(apply_noise(name, images, s, rng()) - images).pow(2).mean() for s in (0.05, 0.1, 0.2)]
    assert change[0] < change[1] < change[2]


def test_noise_statistics_match_their_strength():
    grey = torch.full((4, 3, 64, 64), 0.5)
    rng = ExampleRNG(SEED, range(4))
    assert abs((apply_noise("gaussian", grey, 0.1, rng) - grey).std().item() - 0.1) < 0.003
    uniform = apply_noise("uniform", grey, 0.2, rng) - grey
    assert uniform.abs().max() <= 0.2 and abs(uniform.std().item() - 0.2 / 3**0.5) < 0.003
    flipped = (apply_noise("salt_pepper", grey, 0.3, rng) != grey).float().mean().item()
    assert abs(flipped - 0.3) < 0.01


def test_noise_strength_is_validated():
    images, rng = image_set("fmnist")[:1], ExampleRNG(SEED, [0])
    with pytest.raises(ValueError, match=r"gaussian noise strength \(sigma\) must be >= 0"):
        apply_noise("gaussian", images, -0.1, rng)
    with pytest.raises(ValueError, match=r"salt_pepper noise strength \(fraction\) must be >= 0 and <= 1"):
        apply_noise("salt_pepper", images, 1.5, rng)
    with pytest.raises(ValueError, match="unknown noise 'pink'"):
        apply_noise("pink", images, 0.1, rng)


def test_poisson_sampler_inverts_the_poisson_cdf():
    u = torch.rand(20_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    u = torch.cat([u, torch.tensor([1e-7, 0.5, 1.0 - 1e-7], dtype=torch.float64)])
    for rate in (1e-4, 0.3, 3.0, 12.0, 40.0, 500.0, 1e5):
        exact = torch.from_numpy(scipy.stats.poisson.ppf(u.numpy(), rate))
        assert torch.equal(poisson_quantile(torch.full_like(u, rate), u), exact)
    no_light = poisson_quantile(torch.zeros(3), torch.tensor([0.1, 0.5, 0.9]))
    assert torch.equal(no_light, torch.zeros(3, dtype=torch.float64))


def test_poisson_table_path_equals_plain_stepping_on_real_images():
    rates = torch.cat([image_set("rgb64").reshape(-1) * 12.0, image_set("fmnist").reshape(-1) * 100.0])
    u = torch.rand(rates.shape, generator=torch.Generator().manual_seed(1))
    positive = rates > 0
    mean, uniform = rates[positive].double(), u[positive].double().clamp(1e-7, 1.0 - 1e-7)
    plain = torch.zeros_like(rates, dtype=torch.float64)
    plain[positive] = poisson_steps(mean, uniform, cornish_fisher_start(mean, uniform))
    assert torch.equal(poisson_quantile(rates, u), plain)


def _relaxed_chamfer(sources: torch.Tensor, cap: float) -> torch.Tensor:
    """The chamfer distance by plain relaxation: ceil(cap) rounds of all 16 steps on the whole image."""
    limit = round(cap * CHAMFER_SCALE)
    far = float(limit + 4 * CHAMFER_SCALE)
    distance = torch.where(sources, 0.0, far).double()
    straight, diagonal, knight = CHAMFER_COSTS
    steps = [(0, 1, straight), (0, -1, straight), (1, 0, straight), (-1, 0, straight)]
    steps += [(dy, dx, diagonal) for dy in (-1, 1) for dx in (-1, 1)]
    steps += [(dy, dx, knight) for dy, dx in ((1, 2), (2, 1), (-1, 2), (-2, 1), (1, -2), (2, -1), (-1, -2), (-2, -1))]
    height, width = sources.shape[-2:]
    for _ in range(math.ceil(cap)):
        framed = F.pad(distance, (2, 2, 2, 2), value=far)
        reached = distance
        for dy, dx, cost in steps:
            reached = torch.minimum(reached, framed[..., 2 + dy : 2 + dy + height, 2 + dx : 2 + dx + width] + cost)
        distance = reached
    return distance.clamp(max=limit) / CHAMFER_SCALE


def test_chamfer_raster_passes_equal_plain_relaxation_on_real_edges():
    stored = (image_set("rgb64")[:, :1] * 255.0).floor()
    edges = canny(stored)
    sparse = torch.rand(4, 1, 23, 37, generator=torch.Generator().manual_seed(2)) < 0.01
    for sources, cap in ((edges, 20.0), (sparse, 7.3)):
        assert torch.equal(chamfer_distance(sources, cap), _relaxed_chamfer(sources, cap))


def test_shift_sum_equals_a_per_tap_gather():
    images = torch.cat([image_set("fmnist")[:2].expand(-1, 3, -1, -1), image_set("rgb32")[:, :, 2:30, 2:30]])
    weights = torch.tensor([0.4, 0.3, 0.2, 0.1])
    offsets = torch.randint(-3, 4, (len(images), 4, 2), generator=torch.Generator().manual_seed(3))
    height, width = images.shape[-2:]
    rows, cols = torch.arange(height).view(1, -1, 1), torch.arange(width).view(1, 1, -1)
    plain = torch.zeros_like(images)
    for t in range(4):
        index = (rows - offsets[:, t, 0].view(-1, 1, 1)).clamp(0, height - 1) * width
        index = (index + (cols - offsets[:, t, 1].view(-1, 1, 1)).clamp(0, width - 1)).view(len(images), 1, -1)
        plain += weights[t] * images.reshape(len(images), 3, -1).gather(2, index.expand(-1, 3, -1)).view_as(images)
    assert torch.equal(shift_sum(images, weights, offsets), plain)


def test_grey_jpeg_at_quality_100_is_nearly_lossless_and_lower_quality_loses_more():
    images = image_set("fmnist")
    loss = [(jpeg_round_trip(images, q) - images).pow(2).mean().item() for q in (100, 75, 25)]
    assert loss[0] < 1e-4 and loss[0] < loss[1] < loss[2]


@pytest.mark.parametrize("name", ["rgb32", "fmnist"])
def test_jpeg_in_any_memory_layout_gives_the_contiguous_result_and_leaves_the_input_alone(name):
    images = image_set(name)[:4]
    kept = images.clone()
    cropped = images[..., 1:, 3:]
    layouts = {"channels_last": (images.contiguous(memory_format=torch.channels_last), images),
               "transposed": (images.mT.contiguous().mT, images), "odd size": (cropped, cropped.contiguous())}
    for label, (layout, contiguous) in layouts.items():
        result = jpeg_round_trip(layout, 25)
        assert torch.equal(result, jpeg_round_trip(contiguous, 25)), label
        assert result.is_contiguous(), label
    assert torch.equal(images, kept)


def test_preview_grid_and_png_have_the_grid_size(tmp_path):
    image, names = image_set("fmnist")[0], ["fog", "jpeg_compression", "glass_blur"]
    grid = preview_grid(image, names, SEED)
    assert grid.shape == (3, 3 * (28 + 2) + 2, 6 * (28 + 2) + 2)
    assert torch.equal(grid[:, 2:30, 2:30], image.expand(3, -1, -1))
    path = tmp_path / "preview.png"
    height, width = save_preview_png(path, image, names, SEED)
    scale = cell_scale(28)
    assert (height, width) == (HEADER_HEIGHT + scale * grid.shape[1], LABEL_WIDTH + scale * grid.shape[2])
    assert matplotlib.image.imread(path).shape[:2] == (height, width)


def _posterize(images: torch.Tensor, level: Level, rng: ExampleRNG) -> torch.Tensor:
    """Keep ``b`` bits per value, b the table row: ``floor(x 2^b) / 2^b``."""
    steps = 2**level.row
    return (images * steps).floor() / steps


def test_a_corruption_registered_with_its_own_tables_works_by_name_everywhere():
    name, small, large = "posterize", (6, 5, 4, 3, 2), (5, 4, 3, 2, 1)
    entry = CORRUPTIONS.register(name, Corruption(name, "digital", _posterize, small, large, is_random=False, held_out=True))
    try:
        assert CORRUPTIONS.get(name) is entry
        assert resolve_corruptions("all")[-1] == resolve_corruptions("held-out")[-1] == resolve_corruptions("digital")[-1] == name
        assert name not in resolve_corruptions("imagenet-c") and resolve_corruptions(f"fog,{name}") == ["fog", name]
        for key, table in (("fmnist", small), ("rgb128", large)):
            images = image_set(key)
            for severity in SEVERITIES:
                out = apply_corruption(name, images, severity, ExampleRNG(SEED, range(len(images))))
                steps = 2 ** table[severity - 1]
                assert torch.equal(out, (images * steps).floor() / steps)
        images = image_set("fmnist")
        threat = build_threat("corruption", corruption=name, severity=3)
        out = threat.apply(images, torch.zeros(len(images), dtype=torch.long), None, ExampleRNG(SEED, range(len(images))))
        assert threat.params == {"corruption": name, "severity": 3} and torch.equal(out, (images * 16).floor() / 16)
    finally:
        CORRUPTIONS.unregister(name)
    assert name not in resolve_corruptions("all") and len(resolve_corruptions("all")) == 19


@pytest.mark.parametrize(
    "group, small, problem",
    [("rain", (1, 2, 3, 4, 5), "group: corruption 'odd' has group 'rain'"), ("noise", (1, 2, 3, 4), "small: corruption 'odd' needs a tuple of 5 rows")],
)
def test_a_corruption_needs_a_known_group_and_five_rows_per_table(group, small, problem):
    with pytest.raises(FieldError, match=problem):
        Corruption("odd", group, _posterize, small, (1, 2, 3, 4, 5), is_random=False)
