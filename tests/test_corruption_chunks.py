"""Corruptions computed in chunks of examples (``corruptions.chunking``) equal the whole batch,
bit for bit, on real 224 px photographs (several chunks) and on one and two CPU threads."""

from __future__ import annotations

from functools import lru_cache

import pytest
import torch
import torch.nn.functional as F
from matplotlib import cbook
from matplotlib.image import imread

from robustbench_bilateral.corruptions import CORRUPTIONS, apply_corruption
from robustbench_bilateral.corruptions.chunking import CHUNK_VALUES, chunk_bounds, huge_page_empty, per_chunk
from robustbench_bilateral.corruptions.severity import level
from robustbench_bilateral.corruptions.spatter import SHADING_CHUNK_VALUES, canny, chamfer_distance, shade, water_shading
from robustbench_bilateral.engine.parallel import one_intra_op_thread
from robustbench_bilateral.rng import ExampleRNG

SEED = 3
SIZE = 224
CORNERS = ((0, 0), (0, 112), (100, 0), (100, 112), (200, 0), (200, 112), (60, 30), (150, 90))
"""Top-left corners of 400 px crops of the 600 x 512 px photograph."""


@lru_cache(maxsize=1)
def photographs() -> torch.Tensor:
    """Eight 224 px RGB crops of matplotlib's sample photograph, 150,528 values each: at
    ``CHUNK_VALUES`` = 2^20 they make two chunks, of 6 and 2 images."""
    photo = torch.from_numpy(imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).copy())
    photo = photo.permute(2, 0, 1).float() / 255.0
    crops = [photo[:, top : top + 400, left : left + 400] for top, left in CORNERS]
    return torch.cat([F.interpolate(crop[None], size=(SIZE, SIZE), mode="bilinear", antialias=True) for crop in crops]).clamp(0, 1)


def whole_batch(name: str, images: torch.Tensor, severity: int) -> torch.Tensor:
    """The corruption's function called once on the whole batch, no chunks."""
    entry = CORRUPTIONS.get(name)
    return entry.fn(images, level(entry.small, entry.medium, entry.large, severity, images), ExampleRNG(SEED, range(len(images))))


def test_the_photographs_make_several_chunks():
    images = photographs()
    assert len(images) == len(CORNERS) and chunk_bounds(len(images), images[0].numel()) == [(0, 6), (6, 8)]
    assert chunk_bounds(5, 2 * CHUNK_VALUES) == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5)]
    assert chunk_bounds(0, 10) == []


@pytest.mark.parametrize("severity", (1, 3, 5))
@pytest.mark.parametrize("name", [name for name, entry in CORRUPTIONS.items() if not entry.whole_batch])
def test_chunks_give_the_whole_batchs_numbers(name, severity):
    images = photographs()
    chunked = apply_corruption(name, images, severity, ExampleRNG(SEED, range(len(images))))
    assert torch.equal(chunked, whole_batch(name, images, severity))


@pytest.mark.parametrize("cap", (20.0, 5.5, 30.0))
def test_spatter_shading_by_chunks_equals_the_whole_batch(cap):
    """Caps of 20 and 5.5 px sum distances in float32, 30 px in float64."""
    stored = (photographs().mean(dim=1, keepdim=True) * 255.0).floor()
    assert chunk_bounds(len(stored), stored[0].numel(), SHADING_CHUNK_VALUES) == [(0, 5), (5, 8)]
    whole = shade(chamfer_distance(canny(stored), cap), cap, stored.dtype)
    assert torch.equal(water_shading(stored, cap), whole)
    with one_intra_op_thread():
        assert torch.equal(water_shading(stored, cap), whole)


def test_per_chunk_concatenates_the_chunks_in_order():
    values = torch.arange(5 * 3 * 4, dtype=torch.float32).view(5, 3, 4)
    assert torch.equal(per_chunk(lambda part: part * 2 + part[:, :1], values, limit=24), values * 2 + values[:, :1])
    assert per_chunk(lambda part: part + 1, values[:0], limit=24).shape == (0, 3, 4)


@pytest.mark.parametrize("name, severity", [(name, 4) for name in ("shot_noise", "glass_blur", "jpeg_compression", "elastic_transform")]
                         + [("spatter", 2)])  # spatter's water drops: severities 1-3
def test_one_thread_gives_the_numbers_of_parallel_chunks(name, severity):
    if torch.get_num_threads() < 2:
        pytest.skip("needs 2 CPU threads")
    images = photographs()
    parallel = apply_corruption(name, images, severity, ExampleRNG(SEED, range(len(images))))
    with one_intra_op_thread():
        serial = apply_corruption(name, images, severity, ExampleRNG(SEED, range(len(images))))
    assert torch.equal(parallel, serial)


def test_rows_of_an_rng_draw_from_the_same_generators():
    rng = ExampleRNG(SEED, [7, 8, 9])
    head, tail = rng.rows(0, 2), rng.rows(2, 3)
    assert head.indices == [7, 8] and tail.indices == [9] and len(head) == 2
    first = torch.cat([head.rand(5), tail.rand(5)])
    fresh = ExampleRNG(SEED, [7, 8, 9])
    assert torch.equal(first, fresh.rand(5))
    assert torch.equal(rng.rand(5), fresh.rand(5))


def test_chunks_run_under_inference_mode_and_without_grad():
    images = photographs()
    expected = whole_batch("contrast", images, 3)
    with torch.inference_mode():
        assert torch.equal(apply_corruption("contrast", images, 3, ExampleRNG(SEED, range(len(images)))), expected)
    with torch.no_grad():
        assert torch.equal(apply_corruption("fog", images, 3, ExampleRNG(SEED, range(len(images)))), whole_batch("fog", images, 3))


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64, torch.bfloat16))
def test_the_output_buffer_has_the_images_shape_and_dtype(dtype):
    images = torch.zeros(3, 1, 40, 56, dtype=dtype)
    buffer = huge_page_empty(images)
    assert buffer.shape == images.shape and buffer.dtype == dtype and buffer.device.type == "cpu"
    buffer.fill_(1)
    assert not images.any()
