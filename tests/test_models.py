"""Vision transformers and the causal LM: timm parity, positions, specs, causality."""

from __future__ import annotations

import json

import pytest
import timm
import torch
from timm.models.vision_transformer import VisionTransformer

from robustbench_bilateral.attention import AttentionConfig, BilateralAttention, SoftmaxAttention, parse_variant
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.models import MODELS, create_model, model_spec, transfer_weights

TINY_VIT = dict(img_size=16, in_chans=3, patch_size=4, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0, num_classes=5)
TINY_LM = dict(vocab_size=50, context_length=16, embed_dim=32, depth=2, num_heads=2, mlp_ratio=2.0)


def timm_twin() -> VisionTransformer:
    return VisionTransformer(
        img_size=16, patch_size=4, in_chans=3, num_classes=5, embed_dim=32, depth=2, num_heads=2,
        mlp_ratio=2.0, qkv_bias=True, class_token=True, global_pool="token",
    ).eval()


def test_timm_state_dict_loads_strictly_and_logits_match():
    torch.manual_seed(0)
    reference = timm_twin()
    model = create_model(
        "bilat_vit_tiny_32", parse_variant("softmax", pos_kernel="learned"),
        **TINY_VIT, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
    ).eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    images = torch.rand(3, 3, 16, 16)
    torch.testing.assert_close(model(images), reference(images), atol=1e-5, rtol=0)
    assert transfer_weights(model, reference.state_dict()) == ()


def test_timm_weights_load_into_a_bilateral_model_with_what_it_adds_stated():
    state = timm_twin().state_dict()
    model = create_model("bilat_vit_tiny_32", parse_variant("bilateral+boost", pos_kernel="learned"), **TINY_VIT)
    fresh = {key: value.clone() for key, value in model.state_dict().items()}
    notes = transfer_weights(model, state)
    assert any("log_h_y, log_h_p (4 tensors)" in note for note in notes) and any("attn.nu (2 tensors)" in note for note in notes)
    own = model.state_dict()
    assert all(torch.equal(own[key], fresh[key]) for key in own if key not in state)
    assert all(torch.equal(own[key], state[key]) for key in state)
    assert torch.equal(model.pos_embed, state["pos_embed"])
    sinusoidal = create_model("bilat_vit_tiny_32", "bilateral", **TINY_VIT)
    assert any(note.startswith("dropped pos_embed") for note in transfer_weights(sinusoidal, state))
    with pytest.raises(ValueError, match="unexpected keys extra"):
        transfer_weights(sinusoidal, {**state, "extra": torch.zeros(1)})


def test_deit_shapes_default_to_learned_positions():
    assert create_model("bilat_deit_tiny_224", "softmax", depth=1).pos_embed.shape == (1, 197, 192)
    assert create_model("bilat_deit_tiny_224", "bilateral", depth=1).pos_embed.shape == (1, 197, 192)
    assert create_model("bilat_vit_tiny_28", "softmax").position_plan.kind == "sinusoidal"


def test_every_model_is_registered_and_described():
    assert MODELS.names() == ("bilat_vit_tiny_28", "bilat_vit_tiny_32", "bilat_deit_tiny_224", "bilat_deit_small_224", "bilat_lm")
    assert all(entry.summary for _, entry in MODELS.items())


def test_registered_with_timm():
    model = timm.create_model("bilat_vit_tiny_28", variant="bilateral+boost")
    assert model.attention_config == parse_variant("bilateral+boost")
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(ValueError):
        timm.create_model("bilat_vit_tiny_28", pretrained=True)


def test_model_normalises_its_inputs():
    torch.manual_seed(1)
    mean, std = (0.2, 0.4, 0.6), (0.5, 0.25, 0.3)
    model = create_model("bilat_vit_tiny_32", "softmax", **TINY_VIT, mean=mean, std=std).eval()
    plain = create_model("bilat_vit_tiny_32", "softmax", **TINY_VIT, mean=(0.0,) * 3, std=(1.0,) * 3).eval()
    plain.load_state_dict(model.state_dict())
    images = torch.rand(2, 3, 16, 16)
    normalised = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(model(images), plain(normalised))


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("variant", ["softmax", "bilateral+boost"])
def test_spec_rebuilds_the_same_model(name, variant):
    torch.manual_seed(2)
    small = dict(depth=1) if name.startswith("bilat_deit") else {}
    kwargs = TINY_LM if name == "bilat_lm" else small
    model = create_model(name, parse_variant(variant, layers=(0,)), **kwargs).eval()
    spec = json.loads(json.dumps(model_spec(model)))
    rebuilt = create_model(spec["name"], variant=AttentionConfig.from_dict(spec["attention"]), **spec["kwargs"]).eval()
    rebuilt.load_state_dict(model.state_dict(), strict=True)
    assert model_spec(rebuilt) == spec
    if name == "bilat_lm":
        inputs = torch.randint(0, 50, (2, 10))
    else:
        cfg = spec["kwargs"]
        inputs = torch.rand(1, cfg["in_chans"], cfg["img_size"], cfg["img_size"])
    torch.testing.assert_close(rebuilt(inputs), model(inputs))


def test_positions_are_added_for_softmax_and_passed_for_bilateral():
    torch.manual_seed(3)
    softmax = create_model("bilat_vit_tiny_32", "softmax", **TINY_VIT)
    bilateral = create_model("bilat_vit_tiny_32", parse_variant("bilateral", layers=(1,)), **TINY_VIT)
    assert softmax.position_plan.additive and softmax.position_plan.dim == 32
    assert not bilateral.position_plan.additive and bilateral.pos_table.shape == (17, 8)
    assert isinstance(bilateral.blocks[0].attn, SoftmaxAttention)
    assert isinstance(bilateral.blocks[1].attn, BilateralAttention)
    seen = []
    bilateral.blocks[1].attn.register_forward_hook(lambda m, args, out: seen.append(args[1]))
    bilateral(torch.rand(1, 3, 16, 16))
    assert seen[0] is bilateral.pos_table
    assert bilateral.pos_table[0].abs().sum() == 0  # class token at its reserved (zero) position


def test_position_choices():
    coords = create_model("bilat_vit_tiny_32", parse_variant("bilateral", pos_kernel="coords"), **TINY_VIT)
    assert coords.pos_table.shape == (17, 2) and coords.pos_table[0].tolist() == [1.5, 1.5]
    learned = create_model("bilat_vit_tiny_32", parse_variant("bilateral", pos_kernel="learned"), **TINY_VIT, pos_dim=4)
    assert learned.pos_embed.shape == (1, 17, 4)
    assert model_spec(learned)["kwargs"]["pos_dim"] == 4
    with pytest.raises(ValueError):
        create_model("bilat_vit_tiny_32", parse_variant("softmax", pos_kernel="coords"), **TINY_VIT)
    with pytest.raises(ValueError):
        create_model("bilat_vit_tiny_32", "softmax", **TINY_VIT, pos_dim=8)
    with pytest.raises(ValueError):
        create_model("bilat_vit_tiny_32", parse_variant("bilateral", layers=(5,)), **TINY_VIT)
    with pytest.raises(InputError, match="unknown model 'no_such_model': choose one of bilat_vit_tiny_28"):
        create_model("no_such_model")


LM_CASES = [(v, "sinusoidal") for v in ("softmax", "bilateral", "softmax+boost", "bilateral+boost", "twicing")] + [
    ("softmax", "learned"),
    ("bilateral+boost", "coords"),
    ("bilateral+boost", "learned"),
]


@pytest.mark.parametrize("variant,pos_kernel", LM_CASES)
def test_lm_is_causal(variant, pos_kernel):
    torch.manual_seed(4)
    model = create_model("bilat_lm", parse_variant(variant, pos_kernel=pos_kernel), **TINY_LM).eval()
    ids = torch.randint(0, 50, (2, 16))
    logits = model(ids)
    assert logits.shape == (2, 16, 50)
    for t in (0, 7, 14):
        changed = ids.clone()
        changed[:, t + 1] = (changed[:, t + 1] + 1) % 50
        other = model(changed)
        torch.testing.assert_close(other[:, : t + 1], logits[:, : t + 1], rtol=0, atol=1e-5)
        assert not torch.allclose(other[:, t + 1 :], logits[:, t + 1 :])


def test_lm_embedding_entry_points_and_tied_weights():
    torch.manual_seed(5)
    model = create_model("bilat_lm", "bilateral", **TINY_LM).eval()
    ids = torch.randint(0, 50, (2, 12))
    torch.testing.assert_close(model.forward_embeddings(model.embed(ids)), model(ids))
    assert [n for n, _ in model.named_parameters() if "embed" in n or "head" in n] == ["tok_embed.weight"]
    assert model(torch.randint(0, 50, (1, 24))).shape == (1, 24, 50)  # fixed positions extrapolate
    learned = create_model("bilat_lm", parse_variant("bilateral", pos_kernel="learned"), **TINY_LM)
    with pytest.raises(ValueError):
        learned(torch.randint(0, 50, (1, 24)))
