"""A variant is a config: which kernel, how positions enter, boosting, and the blocks it applies to.

Variant names are ``<kernel>[+boost]``: ``softmax``, ``bilateral``, ``softmax+boost``,
``bilateral+boost``; ``twicing`` is the alias of ``softmax+boost`` with ``K = 1`` and ``nu = 1``,
whose output ``(2A - A^2) V`` is Twicing attention. Every checkpoint stores its config, so a
checkpoint rebuilds its own model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from robustbench_bilateral.errors import InputError

KERNELS = ("softmax", "bilateral")
POS_KERNELS = ("sinusoidal", "coords", "learned")
VARIANT_NAMES = ("softmax", "bilateral", "softmax+boost", "bilateral+boost", "twicing")
FORMULAS = {
    "softmax": "softmax_j(q_i.k_j / sqrt(d)) v_j, positions added to the tokens",
    "bilateral": "softmax_j(-|q_i-k_j|^2/h_y^2 - |p_i-p_j|^2/h_p^2) v_j, per-head h_y, h_p; positions only in the kernel",
    "softmax+boost": "u0 = AV; u_{k+1} = u_k + nu A(V - u_k), K steps, A = softmax attention",
    "bilateral+boost": "u0 = AV; u_{k+1} = u_k + nu A(V - u_k), K steps, A = bilateral attention",
    "twicing": "(2A - A^2) V: softmax+boost with K = 1, nu = 1",
}


@dataclass(frozen=True)
class AttentionConfig:
    """Everything that defines an attention variant.

    kernel: ``softmax`` or ``bilateral``. pos_kernel: ``sinusoidal`` (fixed sin/cos features,
    default), ``coords`` (centred raw grid coordinates) or ``learned`` (a learned table, as DeiT).
    pos_dim: width of sinusoidal position vectors in the bilateral kernel (the softmax kernel adds
    positions to tokens, so there they have the model width). boost_steps: ``K`` (0 = none).
    nu_init: initial per-head boosting rate. layers: indices of blocks using this kernel and
    boosting (``None`` = all); the other blocks use plain softmax attention.
    """

    kernel: str = "softmax"
    pos_kernel: str = "sinusoidal"
    pos_dim: int = 8
    boost_steps: int = 0
    nu_init: float = 1.0
    layers: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.kernel not in KERNELS:
            raise InputError(f"unknown attention kernel '{self.kernel}': choose one of {', '.join(KERNELS)}")
        if self.pos_kernel not in POS_KERNELS:
            raise InputError(f"unknown pos_kernel '{self.pos_kernel}': choose one of {', '.join(POS_KERNELS)}")
        if self.boost_steps < 0 or self.pos_dim < 2 or self.pos_dim % 2:
            raise InputError("boost_steps must be >= 0 and pos_dim an even number >= 2")
        if self.layers is not None:
            object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))

    @property
    def name(self) -> str:
        """The variant name: ``<kernel>`` or ``<kernel>+boost``."""
        return f"{self.kernel}+boost" if self.boost_steps else self.kernel

    def applies_to(self, block: int) -> bool:
        """Whether block ``block`` uses this kernel and boosting (else plain softmax)."""
        return self.layers is None or block in self.layers

    def to_dict(self) -> dict:
        """JSON-safe form stored in checkpoints."""
        out = asdict(self)
        out["layers"] = None if self.layers is None else list(self.layers)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> AttentionConfig:
        return cls(**data)


def parse_variant(name: str, **overrides) -> AttentionConfig:
    """The config of a variant name, with fields overridden by keyword (e.g. ``boost_steps=2``)."""
    base = {
        "softmax": {},
        "bilateral": {"kernel": "bilateral"},
        "softmax+boost": {"boost_steps": 1},
        "bilateral+boost": {"kernel": "bilateral", "boost_steps": 1},
        "twicing": {"boost_steps": 1, "nu_init": 1.0},
    }
    if name not in base:
        raise InputError(f"unknown variant '{name}': choose one of {', '.join(VARIANT_NAMES)}")
    return replace(AttentionConfig(**base[name]), **overrides)


def describe_variants() -> list[tuple[str, str]]:
    """``(name, one-line formula)`` of each variant, for ``bilat-eval list variants``."""
    return [(name, FORMULAS[name]) for name in VARIANT_NAMES]
