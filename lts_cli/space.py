"""GPT-2 architectures: the `Arch` record, its validation, stable id and exact parameter counts (pure)."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lts_cli.errors import ConfigError, LtsError, NotGpt2, UsageError, invalid
from lts_cli.views import JsonObject

ARCH_TYPE = "gpt2"
GPT2_VOCAB_SIZE = 50257
GPT2_EOS_ID = 50256  # <|endoftext|>, the last token of GPT-2's vocabulary
GPT2_N_POSITIONS = 1024
ARCH_FIELDS = ("n_layer", "d_model", "d_inner", "n_head", "vocab_size", "n_positions")
EXAMPLE_SPEC = "n_layer=4,d_model=128,d_inner=768,n_head=4"
# An id written in short: `gpt2_` and at least 4 hex digits of an archid (or a published gallery id).
ID_PREFIX = re.compile(r"gpt2_[0-9a-f]{4,40}")

# transformers' GPT-2 config.json key -> Arch field (n_inner null means 4 x n_embd, as transformers reads it).
HF_FIELDS = {
    "n_layer": "n_layer",
    "n_embd": "d_model",
    "n_inner": "d_inner",
    "n_head": "n_head",
    "vocab_size": "vocab_size",
    "n_positions": "n_positions",
}

# Keys of the published (archai) gallery configs that map onto Arch fields, and those we accept and ignore.
_ALIASES = {"max_sequence_length": "n_positions"}
_IGNORED = {"dropatt"}  # attention dropout: a training setting, not part of the shape


@dataclass(frozen=True)
class Arch:
    """A GPT-2 decoder shape; the LM head is tied to the token embedding."""

    n_layer: int
    d_model: int
    d_inner: int
    n_head: int
    vocab_size: int = GPT2_VOCAB_SIZE
    n_positions: int = GPT2_N_POSITIONS

    def __post_init__(self) -> None:
        for name in ARCH_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise LtsError(f"{name} must be an integer, got {value!r}")
            if value < 1:
                raise LtsError(f"{name} must be at least 1, got {value}")
        if self.d_model % self.n_head:
            raise LtsError(
                f"n_head: d_model ({self.d_model}) is not divisible by n_head ({self.n_head}); "
                "pick an n_head that divides d_model"
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_config(self) -> JsonObject:
        """The gallery-style config (the published JSON layout); its hash is the archid."""
        return {
            "arch_type": ARCH_TYPE,
            "d_inner": self.d_inner,
            "d_model": self.d_model,
            "dropatt": 0.0,
            "max_sequence_length": self.n_positions,
            "n_head": self.n_head,
            "n_layer": self.n_layer,
            "vocab_size": self.vocab_size,
        }

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in ARCH_FIELDS}

    @property
    def archid(self) -> str:
        """`gpt2_` + sha1 of the canonical config; equals archai's id for the same config."""
        canonical = json.dumps(self.to_config(), sort_keys=True)
        return f"{ARCH_TYPE}_{hashlib.sha1(canonical.encode('ascii')).hexdigest()}"

    @property
    def non_embedding_params(self) -> int:
        """All parameters except token and position embeddings (the tied LM head is not counted)."""
        return non_embedding_params(self.n_layer, self.d_model, self.d_inner)

    @property
    def unique_params(self) -> int:
        """Every stored parameter: non-embedding + token + position embeddings (tied head stored once)."""
        return self.non_embedding_params + (self.vocab_size + self.n_positions) * self.d_model

    @property
    def memory_estimate_mib(self) -> float:
        """fp32 weights of every stored parameter, MiB: the ONNX file size before it is measured."""
        return 4 * self.unique_params / 2**20

    def short(self) -> str:
        return f"L{self.n_layer} d{self.d_model} ff{self.d_inner} h{self.n_head}"

    def hf_fields(self) -> dict[str, int]:
        """The architecture in transformers' GPT-2 config keys (n_embd, n_inner, ...)."""
        return {key: getattr(self, name) for key, name in HF_FIELDS.items()}

    @classmethod
    def from_hf_config(cls, config: Mapping[str, Any], source: str = "config.json") -> Arch:
        """The Arch of a transformers GPT-2 `config.json`; anything but a GPT-2 is an error naming it."""
        model_type = config.get("model_type")
        if model_type != ARCH_TYPE:
            raise NotGpt2(f"{source} describes a {model_type!r} model; lts searches, profiles and exports GPT-2 only")
        values: JsonObject = {}
        for key, name in HF_FIELDS.items():
            value = config.get(key)
            if key == "n_inner" and value is None:
                value = 4 * config.get("n_embd", 0)
            if value is None and key in ("vocab_size", "n_positions"):
                continue  # transformers' defaults are GPT-2's: 50257 and 1024
            values[name] = value
        try:
            return cls(**values)
        except (LtsError, TypeError) as exc:
            raise LtsError(f"{source}: {exc}") from exc

    @classmethod
    def from_config(cls, config: Mapping[str, Any], source: str = "config") -> Arch:
        """Build from our own keys or the published gallery layout; unknown keys are errors."""
        if not isinstance(config, Mapping):
            raise LtsError(f"{source}: expected a mapping of architecture fields, got {type(config).__name__}")
        values: JsonObject = {}
        for key, value in config.items():
            if key == "arch_type":
                if value != ARCH_TYPE:
                    raise LtsError(f"{source}: arch_type {value!r} is not supported; lts searches '{ARCH_TYPE}'")
                continue
            if key in _IGNORED:
                continue
            name = _ALIASES.get(key, key)
            if name not in ARCH_FIELDS:
                known = ", ".join(ARCH_FIELDS)
                raise LtsError(f"{source}: unknown architecture key {key!r}; known keys: {known}")
            values[name] = value
        missing = [name for name in ARCH_FIELDS[:4] if name not in values]
        if missing:
            raise LtsError(f"{source}: missing {', '.join(missing)} (e.g. {EXAMPLE_SPEC})")
        try:
            return cls(**values)
        except LtsError as exc:
            raise LtsError(f"{source}: {exc}") from exc


def unique(ref: str, names: Iterable[str], what: str) -> str | None:
    """The one name equal to `ref`, else the one an id prefix (`gpt2_` + 4 hex digits) starts;
    None if none does; an error naming the candidates if several do."""
    names = sorted(set(names))
    if ref in names:
        return ref
    if not ID_PREFIX.fullmatch(ref):
        return None
    matches = [name for name in names if name.startswith(ref)]
    if len(matches) > 1:
        shown = ", ".join(matches[:4]) + (", ..." if len(matches) > 4 else "")
        raise LtsError(f"{ref!r} matches {len(matches)} {what} ({shown}); give more characters")
    return matches[0] if matches else None


def non_embedding_params(n_layer: int, d_model: int, d_inner: int) -> int:
    """Exact count for the transformers GPT-2 block.

    Per layer: ln_1 and ln_2 (4d), c_attn (3d^2 + 3d), attn.c_proj (d^2 + d), c_fc (d*di + di),
    mlp.c_proj (di*d + d); plus the final ln_f (2d).
    """
    d, di = d_model, d_inner
    return n_layer * (4 * d * d + 2 * d * di + 9 * d + di) + 2 * d


def parse_arch_spec(spec: str) -> Arch:
    """Parse `n_layer=4,d_model=128,d_inner=768,n_head=4` (vocab_size and n_positions optional)."""
    values: dict[str, int] = {}
    for part in spec.replace(" ", "").split(","):
        if not part:
            continue
        key, sep, raw = part.partition("=")
        if not sep or not key or not raw:
            raise UsageError(f"malformed --arch {spec!r}: expected key=value pairs such as {EXAMPLE_SPEC}")
        if key not in ARCH_FIELDS:
            raise UsageError(f"--arch: unknown key {key!r}; known keys: {', '.join(ARCH_FIELDS)}")
        try:
            values[key] = int(raw)
        except ValueError as exc:
            raise UsageError(f"--arch: {key}={raw!r} is not an integer") from exc
    try:
        return Arch.from_config(values, source="--arch")
    except LtsError as exc:
        raise UsageError(str(exc)) from exc


def forward_flops(arch: Arch, seq_len: int, batch_size: int = 1, last_position_head: bool = True) -> int:
    """Multiply-add FLOPs (x2) of one forward: projections, attention scores and values, LM head."""
    d, di, s = arch.d_model, arch.d_inner, seq_len
    per_layer = 2 * s * (4 * d * d + 2 * d * di) + 4 * s * s * d
    head = 2 * d * arch.vocab_size * (1 if last_position_head else s)
    return batch_size * (arch.n_layer * per_layer + head)


@dataclass(frozen=True)
class SearchSpace:
    """The choices for each field (the published GPT-2 space by default) and the mutation rate."""

    n_layer: tuple[int, ...] = tuple(range(1, 11))
    d_model: tuple[int, ...] = tuple(range(128, 961, 64))
    d_inner: tuple[int, ...] = tuple(range(128, 961, 64))
    n_head: tuple[int, ...] = (2, 4, 8)
    vocab_size: int = GPT2_VOCAB_SIZE
    n_positions: int = GPT2_N_POSITIONS
    mutation_prob: float = 0.3

    def __post_init__(self) -> None:
        for name in SPACE_CHOICES:
            values = getattr(self, name)
            if not values:
                raise invalid(name, "has no choices")
            if any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
                raise invalid(name, "must list positive integers", list(values))
        if not any(m % h == 0 for m in self.d_model for h in self.n_head):
            raise ConfigError(
                ["d_model", "n_head"], "no {0} choice is divisible by any {1} choice; no architecture is possible"
            )
        if not 0 <= self.mutation_prob <= 1:
            raise invalid("mutation_prob", "must be between 0 and 1", self.mutation_prob)

    def describe(self, name: str) -> str:
        values = sorted(set(getattr(self, name)))
        steps = {b - a for a, b in itertools.pairwise(values)}
        if len(values) > 3 and len(steps) == 1:
            step = steps.pop()
            return f"{values[0]}..{values[-1]}" + (f" step {step}" if step != 1 else "")
        return ", ".join(map(str, values))

    def check(self, arch: Arch) -> None:
        """Raise, naming the field, if `arch` is not a point of this space."""
        for name in SPACE_CHOICES:
            value = getattr(arch, name)
            if value not in getattr(self, name):
                raise LtsError(f"{name} {value} is outside the search space ({self.describe(name)})")
        for name in ("vocab_size", "n_positions"):
            if getattr(arch, name) != getattr(self, name):
                raise LtsError(f"{name} {getattr(arch, name)} differs from the search space's {getattr(self, name)}")

    def _make(self, values: dict[str, int]) -> Arch | None:
        if values["d_model"] % values["n_head"]:
            return None
        return Arch(vocab_size=self.vocab_size, n_positions=self.n_positions, **values)

    def sample(self, rng: random.Random, tries: int = 100) -> Arch:
        """A uniformly random valid architecture (d_model divisible by n_head)."""
        for _ in range(tries):
            arch = self._make({name: rng.choice(getattr(self, name)) for name in SPACE_CHOICES})
            if arch is not None:
                return arch
        raise LtsError("could not sample an architecture with d_model divisible by n_head; check the space")

    def mutate(self, arch: Arch, rng: random.Random) -> Arch:
        """Redraw each field with probability `mutation_prob`; the parent itself if nothing valid changed."""
        values = {name: getattr(arch, name) for name in SPACE_CHOICES}
        for name in SPACE_CHOICES:
            if rng.random() < self.mutation_prob:
                values[name] = rng.choice(getattr(self, name))
        return self._make(values) or arch

    def crossover(self, a: Arch, b: Arch, rng: random.Random) -> Arch:
        """Each field from one parent or the other at random; `a` itself if the mix is invalid."""
        values = {name: rng.choice([getattr(a, name), getattr(b, name)]) for name in SPACE_CHOICES}
        return self._make(values) or a

    def _shapes(self) -> Iterator[tuple[int, int, int]]:
        """Every (n_layer, d_model, d_inner) of the space that some n_head choice can build."""
        d_models = [m for m in self.d_model if any(m % h == 0 for h in self.n_head)]
        return itertools.product(self.n_layer, d_models, self.d_inner)

    def params_range(self) -> tuple[int, int]:
        """The fewest and the most non-embedding parameters of the space's architectures."""
        counts = [non_embedding_params(*shape) for shape in self._shapes()]
        return min(counts), max(counts)

    def feasible(self, min_params: float, max_params: float) -> bool:
        """Whether any architecture of the space has min_params..max_params non-embedding parameters."""
        return any(min_params <= non_embedding_params(*shape) <= max_params for shape in self._shapes())

    def within(self, min_params: float, max_params: float) -> list[Arch]:
        """Every architecture of the space with min_params..max_params non-embedding parameters, in order."""
        return [
            Arch(n_layer, d_model, d_inner, n_head, self.vocab_size, self.n_positions)
            for n_layer, d_model, d_inner in self._shapes()
            if min_params <= non_embedding_params(n_layer, d_model, d_inner) <= max_params
            for n_head in self.n_head
            if d_model % n_head == 0
        ]

    def count_within(self, min_params: float, max_params: float, stop: int | None = None) -> int:
        """How many architectures `within` would list (counting stops at `stop`)."""
        count = 0
        for shape in self._shapes():
            if min_params <= non_embedding_params(*shape) <= max_params:
                count += sum(1 for h in self.n_head if shape[1] % h == 0)
                if stop is not None and count >= stop:
                    return count
        return count

    def extreme(self, largest: bool) -> Arch:
        """The architecture with the most (or fewest) parameters in the space."""
        pick = max if largest else min
        d_model = pick(m for m in self.d_model if any(m % h == 0 for h in self.n_head))
        n_head = next(h for h in self.n_head if d_model % h == 0)
        return Arch(pick(self.n_layer), d_model, pick(self.d_inner), n_head, self.vocab_size, self.n_positions)


SPACE_CHOICES = ("n_layer", "d_model", "d_inner", "n_head")
