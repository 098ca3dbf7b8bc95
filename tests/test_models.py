"""Models: timm registration, parity with timm's VisionTransformer, rebuild from the spec."""

from __future__ import annotations

import pytest
import timm
import torch
from timm.models.vision_transformer import VisionTransformer

from robustbench_bilateral.attention import AttentionConfig, parse_variant
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.models import MODEL_NAMES, create_model, load_timm_state_dict, model_spec


def test_softmax_with_learned_positions_matches_timm_vision_transformer_exactly():
    torch.manual_seed(0)
    reference = VisionTransformer(img_size=28, patch_size=4, in_chans=1, num_classes=10, embed_dim=64, depth=2,
                                  num_heads=2, mlp_ratio=2.0, qkv_bias=True).eval()
    with torch.no_grad():
        for parameter in reference.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    ours = create_model("bilat_vit_tiny_28", variant=AttentionConfig(pos_kernel="learned"), embed_dim=64, depth=2,
                        num_heads=2, mean=(0.0,), std=(1.0,)).eval()
    load_timm_state_dict(ours, reference.state_dict())
    images = torch.rand(5, 1, 28, 28)
    torch.testing.assert_close(ours(images), reference(images), rtol=0, atol=1e-5)


def test_models_normalise_inside_forward():
    torch.manual_seed(1)
    plain = create_model("bilat_vit_tiny_28", embed_dim=32, depth=1, num_heads=2, mean=(0.0,), std=(1.0,)).eval()
    shifted = create_model("bilat_vit_tiny_28", embed_dim=32, depth=1, num_heads=2, mean=(0.3,), std=(0.5,)).eval()
    shifted.load_state_dict(plain.state_dict())
    images = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(shifted(images), plain((images - 0.3) / 0.5))


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_is_a_timm_model_and_rebuilds_from_its_spec(name):
    small = {"embed_dim": 32, "depth": 1, "num_heads": 2}
    extra = {"vocab_size": 30, "context_length": 8} if name == "bilat_lm" else {}
    model = timm.create_model(name, variant="bilateral+boost", **small, **extra)
    spec = model_spec(model)
    assert spec["attention"]["kernel"] == "bilateral" and spec["attention"]["boost_steps"] == 1
    rebuilt = create_model(spec["name"], variant=AttentionConfig.from_dict(spec["attention"]), **spec["kwargs"])
    assert rebuilt.state_dict().keys() == model.state_dict().keys()
    assert model_spec(rebuilt) == spec


def test_deit_models_default_to_learned_positions_for_checkpoint_parity():
    model = create_model("bilat_deit_tiny_224", variant="softmax", depth=1)
    assert model.pos_embed.shape == (1, 197, 192)


def test_bad_model_settings_name_the_fix():
    with pytest.raises(InputError, match="unknown model 'vit_huge'"):
        create_model("vit_huge")
    with pytest.raises(InputError, match="has no setting width"):
        create_model("bilat_vit_tiny_28", width=3)
    with pytest.raises(InputError, match="unknown variant 'gaussian'"):
        parse_variant("gaussian")
    with pytest.raises(InputError, match="coords' needs the bilateral kernel"):
        create_model("bilat_vit_tiny_28", variant=AttentionConfig(pos_kernel="coords"))


def test_sinusoidal_bilateral_lm_evaluates_beyond_its_training_context():
    model = create_model("bilat_lm", variant="bilateral", vocab_size=20, context_length=8, embed_dim=16, depth=1, num_heads=2)
    assert model(torch.randint(0, 20, (1, 32))).shape == (1, 32, 20)
    learned = create_model("bilat_lm", variant=parse_variant("bilateral", pos_kernel="learned"), vocab_size=20,
                           context_length=8, embed_dim=16, depth=1, num_heads=2)
    with pytest.raises(ValueError, match="learned positions exist up to 8 tokens"):
        learned(torch.randint(0, 20, (1, 32)))
