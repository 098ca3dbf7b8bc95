"""Your own model: timm names, attention swapped into plain weights, preprocessing as data."""

from __future__ import annotations

import json
import math

import datasets
import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file, save_model
from torchvision.transforms import InterpolationMode, v2

from robustbench_bilateral.checkpoint import METADATA_KEY, load_checkpoint, read_metadata, save_checkpoint
from robustbench_bilateral.data import image_tensors
from robustbench_bilateral.errors import BilatError, FieldError
from robustbench_bilateral.models import create_model, model_spec, parse_model_kwargs
from robustbench_bilateral.preprocessing import Preprocessing
from robustbench_bilateral.training import PRESETS

TIMM_NAME = "vit_tiny_patch16_224"
SMALL = dict(img_size=32, patch_size=8, depth=2, num_classes=10)


def normalised(images: torch.Tensor, config: dict) -> torch.Tensor:
    """Pixels in [0, 1] normalised with a timm pretrained config's mean/std, as timm's own models take them."""
    mean = torch.tensor(config["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(config["std"]).view(1, -1, 1, 1)
    return (images - mean) / std


@pytest.fixture(scope="module")
def timm_vit():
    torch.manual_seed(0)
    return timm.create_model(TIMM_NAME, pretrained=False, **SMALL).eval()


@pytest.fixture()
def timm_weights(timm_vit, tmp_path):
    path = tmp_path / "vit.pth"
    torch.save(timm_vit.state_dict(), path)
    return path


def test_timm_state_dict_evaluates_under_its_timm_name_with_timm_logits(timm_vit, timm_weights):
    loaded = load_checkpoint(timm_weights, TIMM_NAME, model_kwargs=SMALL)
    images = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), timm_vit(normalised(images, timm_vit.pretrained_cfg)))
    assert loaded.variant == "softmax" and loaded.notes == ()
    assert loaded.meta["model"]["name"] == TIMM_NAME
    assert loaded.meta["preprocessing"] == {"mean": [0.5] * 3, "std": [0.5] * 3, "input_size": 32, "resize": None,
                                            "crop_pct": 0.9, "interpolation": "bicubic"}


def test_bilateral_variant_loads_the_shared_weights_and_says_what_it_added_and_dropped(timm_vit, timm_weights):
    loaded = load_checkpoint(timm_weights, TIMM_NAME, variant="bilateral+boost", model_kwargs=SMALL)
    assert loaded.variant == "bilateral+boost"
    assert loaded.notes == (
        "added blocks.*.attn.log_h_y, log_h_p (4 tensors) at the softmax-equivalent bandwidth (4d)^(1/4) = 4.00 (d = 64)",
        "added blocks.*.attn.nu (2 tensors) at nu_init = 1",
        "dropped pos_embed: bilateral takes sinusoidal positions (P = 8) in every layer",
    )
    model, reference = loaded.model, timm_vit.state_dict()
    shared = [key for key in reference if key != "pos_embed"]
    assert all(torch.equal(model.state_dict()[key], reference[key]) for key in shared)
    attn = model.blocks[1].attn
    assert torch.allclose(attn.log_h_y.exp(), torch.full((3,), math.pow(4 * 64, 0.25)))
    with torch.no_grad():
        logits = model(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 10) and logits.isfinite().all()


def test_a_model_from_a_timm_name_rebuilds_from_its_checkpoint(timm_weights, tmp_path):
    loaded = load_checkpoint(timm_weights, TIMM_NAME, variant="bilateral", model_kwargs=SMALL)
    path = save_checkpoint(tmp_path / "own.safetensors", loaded.model, task="image-classification", dataset="fmnist")
    again = load_checkpoint(path)
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(again.model(images), loaded.model(images))
    assert model_spec(again.model) == model_spec(loaded.model) and again.notes == ()
    assert again.meta["preprocessing"] == loaded.meta["preprocessing"]
    with pytest.raises(FieldError, match="^variant: checkpoint .* is a bilateral model"):
        load_checkpoint(path, variant="softmax")
    with pytest.raises(FieldError, match="^model_kwargs: "):
        load_checkpoint(path, model_kwargs={"depth": 1})


def test_a_mismatched_state_dict_fails_in_one_line_naming_the_keys(timm_vit, tmp_path):
    state = {**timm_vit.state_dict(), "dist_token": torch.zeros(1, 1, 192)}
    path = tmp_path / "other.pth"
    torch.save(state, path)
    with pytest.raises(BilatError) as caught:
        load_checkpoint(path, TIMM_NAME, variant="bilateral", model_kwargs={**SMALL, "depth": 1})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("state dict other.pth does not fit model vit_tiny_patch16_224 (unexpected keys "
                              "blocks.1.norm1.weight, blocks.1.norm1.bias, blocks.1.attn.qkv.weight, "
                              "blocks.1.attn.qkv.bias, blocks.1.attn.proj.weight and 8 more)")
    assert "dist_token" not in message  # listed as the 13th: the message stays short
    with pytest.raises(BilatError, match=r"shapes differ in head.weight \(10, 192\) vs \(7, 192\)"):
        load_checkpoint(_saved(timm_vit, tmp_path), TIMM_NAME, model_kwargs={**SMALL, "num_classes": 7})


def _saved(model: torch.nn.Module, tmp_path) -> str:
    path = tmp_path / "plain.pth"
    torch.save(model.state_dict(), path)
    return str(path)


def test_other_timm_architectures_load_as_softmax_baselines(tmp_path):
    torch.manual_seed(1)
    resnet = timm.create_model("resnet18", pretrained=False, num_classes=3).eval()
    loaded = load_checkpoint(_saved(resnet, tmp_path), "resnet18", model_kwargs={"num_classes": 3})
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), resnet(normalised(images, resnet.pretrained_cfg)))
    assert loaded.variant == "softmax" and loaded.meta["preprocessing"]["input_size"] == 224
    with pytest.raises(FieldError, match="^variant: timm model resnet18 is not a ViT our attention fits \\(a ResNet\\)"):
        load_checkpoint(_saved(resnet, tmp_path), "resnet18", variant="bilateral", model_kwargs={"num_classes": 3})
    path = save_checkpoint(tmp_path / "resnet.safetensors", loaded.model, task="image-classification", dataset="x")
    with torch.no_grad():
        assert torch.equal(load_checkpoint(path).model(images), loaded.model(images))


def test_timm_name_loads_from_the_local_cache_only(timm_vit, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(BilatError, match="not in the local Hugging Face cache"):
        load_checkpoint(f"timm:{TIMM_NAME}", model_kwargs=SMALL)
    repo = tmp_path / f"models--timm--{TIMM_NAME}.augreg_in21k_ft_in1k"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text("abc")
    (repo / "snapshots" / "abc").mkdir(parents=True)
    save_file(timm_vit.state_dict(), str(repo / "snapshots" / "abc" / "model.safetensors"))
    loaded = load_checkpoint(f"timm:{TIMM_NAME}", model_kwargs=SMALL)
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), timm_vit(normalised(images, timm_vit.pretrained_cfg)))
    assert loaded.meta["source"] == f"timm:{TIMM_NAME}"


def test_the_standard_presets_weights_load_with_its_model_name_and_kwargs(tmp_path):
    recipe = PRESETS.get("standard").image
    torch.manual_seed(2)
    trained = create_model(recipe.model, "bilateral+boost", **recipe.model_kwargs, mean=(0.286,), std=(0.353,)).eval()
    loaded = load_checkpoint(_saved(trained, tmp_path), recipe.model, variant="bilateral+boost",
                             model_kwargs=parse_model_kwargs("patch_size=7,embed_dim=128,depth=4,num_heads=4,"
                                                             "mlp_ratio=2.0,mean=(0.286,),std=(0.353,)"))
    images = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), trained(images))
    assert loaded.notes == ()


def test_preprocessing_round_trips_through_a_checkpoint_and_overrides_apply(tmp_path):
    torch.manual_seed(3)
    model = create_model("bilat_vit_tiny_28", "bilateral", embed_dim=32, depth=1, num_heads=2).eval()
    chosen = Preprocessing((0.3,), (0.4,), 28, resize=30, crop_pct=0.9, interpolation="bicubic")
    path = save_checkpoint(tmp_path / "m.safetensors", model, task="image-classification", dataset="fmnist",
                           preprocessing=chosen)
    assert Preprocessing.from_dict(read_metadata(path)["preprocessing"]) == chosen
    loaded = load_checkpoint(path, preprocessing={"mean": [0.5], "std": 0.25, "interpolation": "nearest"})
    assert loaded.meta["preprocessing"] == {**chosen.to_dict(), "mean": [0.5], "std": [0.25], "interpolation": "nearest"}
    assert loaded.meta["model"]["kwargs"]["mean"] == [0.5]
    twin = create_model("bilat_vit_tiny_28", "bilateral", embed_dim=32, depth=1, num_heads=2, mean=(0.5,), std=(0.25,))
    twin.load_state_dict(model.state_dict())
    images = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), twin.eval()(images))
    for overrides, field in [({"crop_pct": 1.5}, "crop_pct"), ({"interpolation": "lanczos"}, "interpolation"),
                             ({"mean": [0.1, 0.2, 0.3]}, "std"),
                             ({"mean": [0.1, 0.2, 0.3], "std": [0.2, 0.2, 0.2]}, "mean"), ({"input_size": 32}, "input_size"),
                             ({"shear": 1}, "preprocessing")]:
        with pytest.raises(FieldError) as caught:
            load_checkpoint(path, preprocessing=overrides)
        assert caught.value.field == field and "\n" not in str(caught.value)


def test_an_old_checkpoint_without_preprocessing_loads_with_the_derived_one(tmp_path):
    torch.manual_seed(4)
    model = create_model("bilat_vit_tiny_28", "softmax", embed_dim=32, depth=1, num_heads=2).eval()
    meta = {"format": "bilat-eval-checkpoint/1", "model": model_spec(model), "variant": "softmax",
            "task": "image-classification", "dataset": "fmnist"}
    path = tmp_path / "old.safetensors"
    save_model(model, str(path), metadata={METADATA_KEY: json.dumps(meta)})
    loaded = load_checkpoint(path)
    assert loaded.meta["preprocessing"] == {"mean": [0.286], "std": [0.353], "input_size": 28, "resize": None,
                                            "crop_pct": 0.875, "interpolation": "bilinear"}
    assert read_metadata(path)["preprocessing"] == loaded.meta["preprocessing"]
    images = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), model(images))


def _pictures(count: int = 3) -> datasets.Dataset:
    rng = np.random.default_rng(5)
    pictures = [Image.fromarray(rng.integers(0, 256, (40 + 3 * i, 50, 3), dtype=np.uint8)) for i in range(count)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    return datasets.Dataset.from_dict({"image": pictures, "label": [i % 2 for i in range(count)]}, features=features)


def test_decoded_pictures_follow_the_preprocessing():
    pictures = _pictures()
    derived = Preprocessing((0.5,) * 3, (0.5,) * 3, 24)
    images, _ = image_tensors(pictures, image_size=24)
    assert torch.equal(image_tensors(pictures, preprocessing=derived)[0], images)
    reference = v2.Compose([v2.PILToTensor(), v2.Resize(int(round(24 * 256 / 224)), antialias=True), v2.CenterCrop(24)])
    assert torch.equal(images, torch.stack([reference(p) for p in pictures["image"]]).float() / 255)
    chosen = Preprocessing((0.5,) * 3, (0.5,) * 3, 16, crop_pct=0.8, interpolation="bicubic")
    bicubic, _ = image_tensors(pictures, preprocessing=chosen)
    expected = v2.Compose([v2.PILToTensor(), v2.Resize(20, InterpolationMode.BICUBIC, antialias=True), v2.CenterCrop(16)])
    assert bicubic.shape == (3, 3, 16, 16)
    assert torch.equal(bicubic, torch.stack([expected(p) for p in pictures["image"]]).float() / 255)


@pytest.mark.parametrize("text,expected", [
    ("patch_size=7,depth=4,mlp_ratio=2.0,qkv_bias=False",
     {"patch_size": 7, "depth": 4, "mlp_ratio": 2.0, "qkv_bias": False}),
    ("mean=(0.5, 0.5, 0.5), std=[0.25,0.25,0.25], act=gelu, pos_dim=None,",
     {"mean": (0.5, 0.5, 0.5), "std": [0.25, 0.25, 0.25], "act": "gelu", "pos_dim": None}),
    ("", {}),
])
def test_model_kwargs_parse_to_typed_values(text, expected):
    assert parse_model_kwargs(text) == expected


@pytest.mark.parametrize("text,problem", [
    ("depth", "item 'depth' is not key=value"),
    ("=4", "item '=4' is not key=value"),
    ("depth=4,depth=5", "depth is given twice"),
])
def test_bad_model_kwargs_name_the_item(text, problem):
    with pytest.raises(FieldError, match=f"^model_kwargs: {problem}"):
        parse_model_kwargs(text)


def test_model_kwargs_timm_does_not_take_are_a_field_error(timm_weights):
    with pytest.raises(FieldError, match="^model_kwargs: timm model vit_tiny_patch16_224 does not take"):
        load_checkpoint(timm_weights, TIMM_NAME, model_kwargs={**SMALL, "no_such_argument": 1})


def test_deit_names_and_timm_arguments_shape_our_vit(tmp_path):
    torch.manual_seed(6)
    kwargs = dict(img_size=32, patch_size=8, depth=1, num_classes=4, qkv_bias=False)
    deit = timm.create_model("deit_tiny_patch16_224", pretrained=False, **kwargs).eval()
    loaded = load_checkpoint(_saved(deit, tmp_path), "deit_tiny_patch16_224", model_kwargs=kwargs)
    assert loaded.model.blocks[0].attn.qkv.bias is None and loaded.meta["model"]["kwargs"]["qkv_bias"] is False
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), deit(normalised(images, deit.pretrained_cfg)))


def test_a_vit_our_attention_does_not_fit_loads_only_as_a_baseline(tmp_path):
    kwargs = dict(SMALL, class_token=False, global_pool="avg")
    pooled = timm.create_model(TIMM_NAME, pretrained=False, **kwargs).eval()
    path = _saved(pooled, tmp_path)
    loaded = load_checkpoint(path, TIMM_NAME, model_kwargs=kwargs)
    images = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded.model(images), pooled(normalised(images, pooled.pretrained_cfg)))
    with pytest.raises(FieldError, match="not a ViT our attention fits \\(no class token, 'avg' pooling, extra norms\\)"):
        load_checkpoint(path, TIMM_NAME, variant="bilateral", model_kwargs=kwargs)


def test_model_kwargs_our_models_do_not_take_are_a_field_error(tmp_path):
    model = create_model("bilat_vit_tiny_28", "softmax", embed_dim=32, depth=1, num_heads=2)
    with pytest.raises(FieldError, match="^model_kwargs: model bilat_vit_tiny_28 cannot be built with"):
        load_checkpoint(_saved(model, tmp_path), "bilat_vit_tiny_28", model_kwargs={"depht": 1})
