"""The identities of variants.md: bilateral filter, fast form, boosting closed form, K_SA = K_BF x cross."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.profiler import profile

from robustbench_bilateral.attention import (
    AttentionConfig,
    BilateralAttention,
    build_attention,
    describe_variants,
    parse_variant,
    variant_names,
)
from robustbench_bilateral.attention.positions import sinusoidal_positions
from robustbench_bilateral.errors import InputError


def identity_maps(module: torch.nn.Module) -> None:
    """Set q = k = v = x and proj = identity."""
    dim = module.proj.in_features
    with torch.no_grad():
        module.qkv.weight.copy_(torch.eye(dim).repeat(3, 1))
        module.qkv.bias.zero_()
        module.proj.weight.copy_(torch.eye(dim))
        module.proj.bias.zero_()


def heads(module: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q, k, v (B, H, T, d) recomputed from the module's qkv weights."""
    b, t, c = x.shape
    qkv = torch.nn.functional.linear(x, module.qkv.weight, module.qkv.bias)
    return qkv.view(b, t, 3, module.num_heads, c // module.num_heads).permute(2, 0, 3, 1, 4).unbind(0)


def merge_project(module: torch.nn.Module, out: torch.Tensor) -> torch.Tensor:
    b, h, t, d = out.shape
    return torch.nn.functional.linear(out.transpose(1, 2).reshape(b, t, h * d), module.proj.weight, module.proj.bias)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double(), b.detach().double()
    return float((a - b).norm() / b.norm())


# 1. bilateral attention with identity maps is a bilateral filter


def test_bilateral_identity_maps_equal_numpy_bilateral_filter():
    torch.manual_seed(0)
    t, c, heads_n, p_dim = 24, 8, 2, 3
    layer = build_attention(c, heads_n, parse_variant("bilateral"))
    identity_maps(layer)
    with torch.no_grad():
        layer.log_h_y.copy_(torch.tensor([0.9, 1.3]))
        layer.log_h_p.copy_(torch.tensor([0.4, 1.1]))
    y = torch.randn(1, t, c)
    p = torch.randn(t, p_dim) * 2
    out = layer(y, p)[0].detach().numpy()

    yn, pn = y[0].double().numpy(), p.double().numpy()
    h_y, h_p = (h.detach() for h in layer.bandwidths())
    d = c // heads_n
    expected = np.zeros((t, c))
    for h in range(heads_n):
        yh = yn[:, h * d : (h + 1) * d]
        k_bf = np.exp(-((yh[:, None] - yh[None]) ** 2).sum(-1) / float(h_y[h]) ** 2) * np.exp(
            -((pn[:, None] - pn[None]) ** 2).sum(-1) / float(h_p[h]) ** 2
        )
        expected[:, h * d : (h + 1) * d] = k_bf @ yh / k_bf.sum(1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_bandwidths_start_at_softmax_equivalent_value():
    layer = build_attention(64, 4, parse_variant("bilateral"))
    h_y, h_p = layer.bandwidths()
    assert torch.allclose(h_y, torch.full((4,), 64.0**0.25)) and torch.allclose(h_p, h_y)
    assert {"log_h_y", "log_h_p"} <= {n for n, _ in layer.named_parameters()}


# 2. the fast form equals the explicit form, values and gradients, at length 512


def explicit_bilateral(layer: BilateralAttention, x, p, causal):
    q, k, v = (t.double() for t in heads(layer, x))
    h_y, h_p = (h.double().view(1, -1, 1, 1) for h in layer.bandwidths())
    pd = p.double()
    logits = -torch.cdist(q, k).pow(2) / h_y**2 - torch.cdist(pd, pd).pow(2) / h_p**2
    if causal:
        logits = logits.masked_fill(torch.ones(len(p), len(p), dtype=torch.bool).triu(1), float("-inf"))
    return merge_project(layer, (logits.softmax(-1) @ v).float())


@pytest.mark.parametrize("causal", [False, True])
def test_fast_form_equals_explicit_form_at_length_512(causal):
    torch.manual_seed(1)
    t, c = 512, 64
    layer = build_attention(c, 2, parse_variant("bilateral"))
    with torch.no_grad():
        layer.log_h_y.add_(torch.tensor([0.2, -0.1]))
        layer.log_h_p.add_(torch.tensor([-0.3, 0.25]))
    p = sinusoidal_positions((t,), 8, base=t).requires_grad_()
    x = torch.randn(2, t, c, requires_grad=True)
    upstream = torch.randn(2, t, c)
    leaves = [x, p, layer.qkv.weight, layer.log_h_y, layer.log_h_p]

    fast = layer(x, p, causal=causal)
    fast_grads = torch.autograd.grad((fast * upstream).sum(), leaves)
    slow = explicit_bilateral(layer, x, p, causal)
    slow_grads = torch.autograd.grad((slow * upstream).sum(), leaves)

    assert rel_err(fast, slow) < 1e-4
    for name, g_fast, g_slow in zip(["x", "positions", "qkv", "log_h_y", "log_h_p"], fast_grads, slow_grads):
        assert rel_err(g_fast, g_slow) < 1e-4, name


def test_fast_form_runs_on_the_fused_cpu_kernel():
    layer = build_attention(64, 2, parse_variant("bilateral+boost"))
    x = torch.randn(2, 65, 64, requires_grad=True)
    p = sinusoidal_positions((65,), 8, base=65)
    with profile() as prof:
        layer(x, p, causal=True).sum().backward()
    ops = {e.key for e in prof.key_averages()}
    assert "aten::_scaled_dot_product_flash_attention_for_cpu" in ops
    assert "aten::_scaled_dot_product_attention_math" not in ops


def test_centring_keeps_long_coordinate_sequences_accurate():
    torch.manual_seed(2)
    t = 2048
    layer = build_attention(32, 1, parse_variant("bilateral"))
    with torch.no_grad():
        layer.log_h_p.fill_(3.0)
    p = torch.arange(t, dtype=torch.float32)[:, None] + 1000.0
    x = torch.randn(1, t, 32)
    assert rel_err(layer(x, p), explicit_bilateral(layer, x, p, False)) < 1e-4  # about 3e-4 uncentred


# 3. boosting


def closed_form_boost(layer, x, p, steps, causal=False):
    """[I - (I - nu A)^K (I - A)] V from the explicit attention matrix."""
    a = layer.attention_matrix(x, p, causal).double()
    _, _, v = heads(layer, x)
    eye = torch.eye(a.shape[-1], dtype=torch.float64)
    nu = layer.nu.double().view(1, -1, 1, 1)
    residual = eye - a
    for _ in range(steps):
        residual = (eye - nu * a) @ residual
    return merge_project(layer, ((eye - residual) @ v.double()).float())


@pytest.mark.parametrize("kernel", ["softmax", "bilateral"])
@pytest.mark.parametrize("steps", [1, 2, 3])
@pytest.mark.parametrize("causal", [False, True])
def test_boost_equals_closed_form(kernel, steps, causal):
    torch.manual_seed(3)
    layer = build_attention(32, 4, parse_variant(f"{kernel}+boost", boost_steps=steps))
    with torch.no_grad():
        layer.nu.copy_(torch.tensor([1.0, 0.5, 1.5, -0.3]))
    x, p = torch.randn(2, 17, 32), torch.randn(17, 4)
    torch.testing.assert_close(layer(x, p, causal), closed_form_boost(layer, x, p, steps, causal), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kernel", ["softmax", "bilateral"])
def test_boost_with_nu_zero_is_plain_attention(kernel):
    torch.manual_seed(4)
    boosted = build_attention(32, 4, parse_variant(f"{kernel}+boost", boost_steps=2, nu_init=0.0))
    plain = build_attention(32, 4, parse_variant(kernel))
    plain.load_state_dict({k: v for k, v in boosted.state_dict().items() if k != "nu"})
    x, p = torch.randn(2, 17, 32), torch.randn(17, 4)
    torch.testing.assert_close(boosted(x, p), plain(x, p))


def test_twicing_is_two_a_minus_a_squared():
    torch.manual_seed(5)
    layer = build_attention(32, 4, parse_variant("twicing"))
    x = torch.randn(2, 17, 32)
    a = layer.attention_matrix(x).double()
    _, _, v = heads(layer, x)
    expected = merge_project(layer, ((2 * a - a @ a) @ v.double()).float())
    torch.testing.assert_close(layer(x), expected, rtol=1e-4, atol=1e-5)


# 4. softmax attention = K_BF x cross factor (x key-norm factor), rows normalised


def test_softmax_is_bilateral_filter_times_cross_factor():
    torch.manual_seed(6)
    t, d = 20, 16
    softmax_layer = build_attention(d, 1, parse_variant("softmax"))
    bilateral_layer = build_attention(d, 1, parse_variant("bilateral"))
    identity_maps(softmax_layer)
    identity_maps(bilateral_layer)
    y, p = torch.randn(1, t, d) * 0.7, torch.randn(t, d) * 0.7
    x = y + p
    a_sa = softmax_layer.attention_matrix(x)[0, 0].double()
    a_bf = bilateral_layer.attention_matrix(y, p)[0, 0].double()  # h_y = h_p = (4d)^(1/4) at init
    yd, pd, xd = y[0].double(), p.double(), x[0].double()
    cross = torch.exp(-((yd[:, None] - yd[None]) * (pd[:, None] - pd[None])).sum(-1) / d**0.5)
    key_norm = torch.exp(xd.pow(2).sum(-1) / (2 * d**0.5))[None, :]
    kernel = a_bf * cross * key_norm
    torch.testing.assert_close(a_sa, kernel / kernel.sum(-1, keepdim=True), rtol=1e-5, atol=1e-6)


# registry and config


def test_variant_names_and_parsing():
    assert variant_names() == ("softmax", "bilateral", "softmax+boost", "bilateral+boost", "twicing")
    assert [n for n, _ in describe_variants()] == list(variant_names())
    assert parse_variant("twicing") == AttentionConfig("softmax", boost_steps=1, nu_init=1.0)
    assert parse_variant("bilateral+boost").boost_steps == 1
    assert parse_variant("bilateral", pos_kernel="coords", layers=[0, 2]).layers == (0, 2)
    for name in variant_names()[:4]:
        assert parse_variant(name).name == name
    with pytest.raises(InputError, match="unknown variant 'x': choose one of softmax, bilateral, softmax"):
        parse_variant("x")
    for bad in [dict(boost_steps=2), dict(nu_init=0.5)]:
        with pytest.raises(InputError):
            parse_variant("twicing", **bad)
    with pytest.raises(InputError):
        parse_variant("softmax", boost_steps=1)
    with pytest.raises(InputError):
        parse_variant("softmax+boost", boost_steps=0)


def test_config_round_trips_through_json():
    import json

    config = parse_variant("bilateral+boost", boost_steps=3, nu_init=0.5, pos_kernel="learned", layers=(1, 3))
    assert AttentionConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    with pytest.raises(ValueError):
        AttentionConfig.from_dict({**config.to_dict(), "name": "softmax"})


def test_registering_a_kernel_adds_its_variants():
    from robustbench_bilateral.attention import KERNELS, SoftmaxAttention, register_kernel

    @register_kernel("scaled_softmax_test")
    class Scaled(SoftmaxAttention):
        formula = "softmax at twice the temperature"

        def operator(self, q, k, positions, causal):
            return super().operator(q * 0.5, k, positions, causal)

    try:
        assert {"scaled_softmax_test", "scaled_softmax_test+boost"} <= set(variant_names())
        layer = build_attention(16, 2, parse_variant("scaled_softmax_test+boost"))
        assert isinstance(layer, Scaled) and layer(torch.randn(1, 5, 16)).shape == (1, 5, 16)
    finally:
        KERNELS.unregister("scaled_softmax_test")
