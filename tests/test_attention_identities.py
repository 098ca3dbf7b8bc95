"""The identities of the attention variants (docs/variants.md), proven numerically."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from robustbench_bilateral.attention import AttentionConfig, boost, build_attention, parse_variant
from robustbench_bilateral.attention.positions import sinusoidal_1d
from robustbench_bilateral.models import create_model


def identity_layer(dim: int, config: AttentionConfig) -> torch.nn.Module:
    """One-head attention whose q, k, v and output maps are identities."""
    layer = build_attention(dim, 1, config).double()
    with torch.no_grad():
        layer.qkv.weight.copy_(torch.cat([torch.eye(dim)] * 3).double())
        layer.qkv.bias.zero_()
        layer.proj.weight.copy_(torch.eye(dim).double())
        layer.proj.bias.zero_()
    return layer


def numpy_bilateral_filter(y: np.ndarray, p: np.ndarray, h_y: float, h_p: float) -> np.ndarray:
    """Classical bilateral filter: out_i = sum_j K_BF(i,j) y_j / sum_j K_BF(i,j)."""
    content = ((y[:, None, :] - y[None, :, :]) ** 2).sum(-1)
    space = ((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    kernel = np.exp(-content / h_y**2) * np.exp(-space / h_p**2)
    return kernel @ y / kernel.sum(1, keepdims=True)


def test_bilateral_with_identity_maps_is_a_bilateral_filter():
    torch.manual_seed(0)
    dim, length = 8, 40
    layer = identity_layer(dim, parse_variant("bilateral"))
    y = torch.randn(length, dim, dtype=torch.float64)
    p = sinusoidal_1d(length, 16).double()
    h_y, h_p = (h.sqrt().item() for h in layer.bandwidths())
    assert h_y == pytest.approx((4 * dim) ** 0.25) and h_p == pytest.approx((4 * dim) ** 0.25)
    out = layer(y[None], positions=p)[0].detach().numpy()
    np.testing.assert_allclose(out, numpy_bilateral_filter(y.numpy(), p.numpy(), h_y, h_p), rtol=1e-10, atol=1e-10)


def explicit_bilateral(q, k, v, p, h2_content, h2_position, causal):
    """softmax(-cdist(q, k)^2 / h_y^2 - D / h_p^2) V with D_ij = |p_i - p_j|^2."""
    logits = -torch.cdist(q, k).pow(2) / h2_content.view(1, -1, 1, 1) - torch.cdist(p, p).pow(2) / h2_position.view(1, -1, 1, 1)
    if causal:
        logits = logits.masked_fill(torch.ones_like(logits, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(logits, -1) @ v


def relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.mark.parametrize("causal", [False, True])
def test_fast_bilateral_form_equals_explicit_gaussian_in_values_and_gradients(causal):
    torch.manual_seed(1)
    heads, length, width = 2, 512, 32
    layer = build_attention(heads * width, heads, parse_variant("bilateral"))
    with torch.no_grad():
        layer.log_h2_content.add_(torch.tensor([0.3, -0.2]))
        layer.log_h2_position.add_(torch.tensor([-0.4, 0.5]))
    q, k, v = (torch.randn(2, heads, length, width, requires_grad=True) for _ in range(3))
    p = sinusoidal_1d(length, 16)

    def run(fast: bool):
        for tensor in (q, k, v, layer.log_h2_content, layer.log_h2_position):
            tensor.grad = None
        h2_content, h2_position = layer.bandwidths()
        out = layer.mixer(q, k, p, causal)(v) if fast else explicit_bilateral(q, k, v, p, h2_content, h2_position, causal)
        (out * torch.linspace(-1, 1, width)).sum().backward()
        return out.detach(), [t.grad.clone() for t in (q, k, v, layer.log_h2_content, layer.log_h2_position)]

    fast_out, fast_grads = run(True)
    ref_out, ref_grads = run(False)
    assert relative_error(fast_out, ref_out) < 1e-4
    for fast_grad, ref_grad in zip(fast_grads, ref_grads):
        assert relative_error(fast_grad, ref_grad) < 1e-4


def test_softmax_with_additive_positions_is_bilateral_times_cross_factor():
    torch.manual_seed(2)
    dim, length = 16, 30
    layer = identity_layer(dim, parse_variant("softmax"))
    y = torch.randn(length, dim, dtype=torch.float64)
    p = sinusoidal_1d(length, dim).double()
    out = layer((y + p)[None])[0].detach().numpy()
    yn, pn, xn = y.numpy(), p.numpy(), (y + p).numpy()
    h = (4 * dim) ** 0.25
    content = ((yn[:, None] - yn[None]) ** 2).sum(-1)
    space = ((pn[:, None] - pn[None]) ** 2).sum(-1)
    cross = np.einsum("ijk,ijk->ij", yn[:, None] - yn[None], pn[:, None] - pn[None])
    key_norm = np.exp((xn**2).sum(-1) / (2 * math.sqrt(dim)))[None, :]
    weights = np.exp(-content / h**2) * np.exp(-space / h**2) * np.exp(-cross / math.sqrt(dim)) * key_norm
    np.testing.assert_allclose(out, weights @ xn / weights.sum(1, keepdims=True), rtol=1e-9, atol=1e-9)


def softmax_matrix(layer, x):
    q, k, _ = layer.qkv(x).chunk(3, dim=-1)
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1)


@pytest.mark.parametrize("steps, nu", [(1, 1.0), (2, 0.7), (3, 1.3)])
def test_boost_equals_its_closed_form(steps, nu):
    torch.manual_seed(3)
    dim, length = 8, 12
    layer = build_attention(dim, 1, parse_variant("softmax+boost", boost_steps=steps, nu_init=nu)).double()
    x = torch.randn(1, length, dim, dtype=torch.float64)
    a = softmax_matrix(layer, x)[0]
    v = layer.qkv(x).chunk(3, dim=-1)[2][0]
    eye = torch.eye(length, dtype=torch.float64)
    nu = layer.nu.item()  # the parameter as stored (float32-rounded)
    closed = (eye - torch.linalg.matrix_power(eye - nu * a, steps) @ (eye - a)) @ v
    torch.testing.assert_close(layer(x)[0], layer.proj(closed), rtol=1e-10, atol=1e-10)


def test_twicing_is_two_a_minus_a_squared_and_nu_zero_is_plain_attention():
    torch.manual_seed(4)
    dim, length = 8, 10
    twicing = build_attention(dim, 1, parse_variant("twicing")).double()
    x = torch.randn(1, length, dim, dtype=torch.float64)
    a = softmax_matrix(twicing, x)[0]
    v = twicing.qkv(x).chunk(3, dim=-1)[2][0]
    torch.testing.assert_close(twicing(x)[0], twicing.proj((2 * a - a @ a) @ v), rtol=1e-10, atol=1e-10)
    for kernel in ("softmax", "bilateral"):
        boosted = build_attention(dim, 2, parse_variant(f"{kernel}+boost", nu_init=0.0))
        plain = build_attention(dim, 2, parse_variant(kernel))
        plain.load_state_dict({k: v for k, v in boosted.state_dict().items() if k != "nu"})
        x32, p = x.float(), sinusoidal_1d(length, 16)
        torch.testing.assert_close(boosted(x32, positions=p), plain(x32, positions=p))


def test_boost_applies_the_filter_to_the_residual():
    values = torch.randn(3, 5)
    halve = lambda t: t / 2  # noqa: E731  (a linear filter A = I/2)
    # u0 = V/2; u1 = V/2 + nu * (V - V/2)/2 with nu = 1 -> 3V/4
    torch.testing.assert_close(boost(halve, values, torch.tensor(1.0), 1), 0.75 * values)


@pytest.mark.parametrize("variant", ["softmax", "bilateral", "softmax+boost", "bilateral+boost"])
@pytest.mark.parametrize("pos_kernel", ["sinusoidal", "learned"])
def test_causal_lm_leaks_no_future_token(variant, pos_kernel):
    torch.manual_seed(5)
    config = parse_variant(variant, pos_kernel=pos_kernel)
    model = create_model("bilat_lm", variant=config, vocab_size=50, context_length=16, embed_dim=32, depth=2, num_heads=2).eval()
    ids = torch.randint(0, 50, (2, 16))
    for t in (0, 7, 14):
        changed = ids.clone()
        changed[:, t + 1] = (changed[:, t + 1] + 1) % 50
        before, after = model(ids), model(changed)
        torch.testing.assert_close(before[:, : t + 1], after[:, : t + 1], rtol=0, atol=0)
        assert not torch.allclose(before[:, t + 1 :], after[:, t + 1 :])
