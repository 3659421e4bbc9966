"""Evolution strategies over a flat proxy-weight vector, with one pure ask/tell interface.

``PaperNES`` is the paper's NES exactly (Ferreira et al. 2022); ``Evosax`` wraps evosax's OpenES and SNES.
All strategies *maximise* the score; evosax minimises, so it gets ``-score``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from synthenv.errors import UsageError
from synthenv.meta.score_transforms import TRANSFORMS, transform

STRATEGIES = ("nes", "open_es", "snes")
MIRRORED_UPDATES = ("best_sign", "difference")


@dataclass(frozen=True)
class ESConfig:
    """Outer-loop settings. ``sigma``/``lr`` mean the paper's σ/α for ``nes``."""

    strategy: str = "nes"
    population: int = 16
    sigma: float = 0.05
    lr: float = 1.0
    score_transform: int = 7
    mirrored: bool = True
    mirrored_update: str = "best_sign"
    """``nes`` with ``mirrored``: how a pair's two scores F+ and F- move the mean. ``best_sign`` (the
    paper's): keep the better sign's score, then the score transform; ``difference`` (the antithetic
    estimate): weight each pair's perturbation by F+ - F-, normalised by the sum of |F+ - F-| (the
    score transform is not used). Pairs whose two signs score the same, e.g. both at the maximum,
    then move nothing."""

    def validate(self) -> None:
        if self.strategy not in STRATEGIES:
            raise UsageError(f"unknown strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.population < 2:
            raise UsageError(f"population must be >= 2, got {self.population}")
        if not self.sigma > 0:
            raise UsageError(f"sigma must be > 0, got {self.sigma}")
        if not self.lr > 0:
            raise UsageError(f"lr (alpha) must be > 0, got {self.lr}")
        if self.score_transform not in TRANSFORMS:
            raise UsageError(f"score transform must be one of 0-7, got {self.score_transform}")
        if self.mirrored_update not in MIRRORED_UPDATES:
            raise UsageError(f"mirrored_update must be one of {', '.join(MIRRORED_UPDATES)}, got {self.mirrored_update!r}")
        if self.mirrored_update == "difference" and not (self.strategy == "nes" and self.mirrored):
            raise UsageError("mirrored_update 'difference' needs the nes strategy with mirrored sampling")
        if self.strategy == "open_es" and self.population % 2:
            raise UsageError(f"open_es uses antithetic pairs: population must be even, got {self.population}")


class NESState(NamedTuple):
    mean: jax.Array


class PaperNES:
    """The paper's NES: ψ ← ψ + α Σ w_i ε_i, ε_i ~ N(0, σ²); mirrored sampling keeps the better sign
    (``mirrored_update`` "best_sign") or weights each pair by its score difference ("difference")."""

    def __init__(self, config: ESConfig, num_dims: int):
        self.c = config
        self.num_dims = num_dims
        self.num_candidates = config.population * (2 if config.mirrored else 1)
        # Common random numbers: both signs of a mirrored pair train agents with the same HPs and seeds.
        self.draw_slots = jnp.tile(jnp.arange(config.population), 2 if config.mirrored else 1)

    def init(self, key: jax.Array, mean: jax.Array) -> NESState:
        return NESState(mean)

    def mean(self, state: NESState) -> jax.Array:
        return state.mean

    def ask(self, key: jax.Array, state: NESState) -> tuple[jax.Array, Any, NESState]:
        eps = self.c.sigma * jax.random.normal(key, (self.c.population, self.num_dims))
        cands = state.mean + eps
        if self.c.mirrored:
            cands = jnp.concatenate([cands, state.mean - eps])
        return cands, eps, state

    def tell(self, key, state: NESState, cands, scores, unperturbed_mean, eps):
        """Returns the new state and each member's score (after the greedy sign choice)."""
        n = self.c.population
        if self.c.mirrored:
            plus, minus = scores[:n], scores[n:]
            scores = jnp.maximum(plus, minus)
            if self.c.mirrored_update == "difference":
                d = (plus - minus).astype(jnp.float32)
                norm = jnp.sum(jnp.abs(d))
                w = jnp.where(norm > 0, d / jnp.where(norm > 0, norm, 1.0), 0.0)
                return NESState(state.mean + self.c.lr * (w @ eps)), scores
            eps = jnp.where((minus > plus)[:, None], -eps, eps)
        w = transform(scores, self.c.score_transform, unperturbed_mean)
        return NESState(state.mean + self.c.lr * (w @ eps)), scores


class Evosax:
    """evosax OpenES (antithetic, centered ranks, Adam) or SNES (NES utilities, SGD)."""

    def __init__(self, config: ESConfig, num_dims: int):
        import optax
        from evosax.algorithms import SNES, Open_ES

        self.c = config
        self.num_candidates = config.population
        half = config.population // 2
        self.draw_slots = (jnp.tile(jnp.arange(half), 2) if config.strategy == "open_es"
                           else jnp.arange(config.population))
        solution = jnp.zeros((num_dims,), jnp.float32)
        if config.strategy == "open_es":
            self.es = Open_ES(config.population, solution, use_antithetic_sampling=True,
                              optimizer=optax.adam(config.lr),
                              std_schedule=optax.constant_schedule(config.sigma))
            self.params = self.es.default_params
        else:
            self.es = SNES(config.population, solution, optimizer=optax.sgd(config.lr))
            self.params = self.es.default_params.replace(std_init=jnp.float32(config.sigma))

    def init(self, key, mean):
        return self.es.init(key, mean, self.params)

    def mean(self, state):
        return state.mean

    def ask(self, key, state):
        pop, state = self.es.ask(key, state, self.params)
        return pop, None, state

    def tell(self, key, state, cands, scores, unperturbed_mean, aux):
        state, _ = self.es.tell(key, cands, -scores, state, self.params)
        return state, scores


def make_strategy(config: ESConfig, num_dims: int):
    config.validate()
    return PaperNES(config, num_dims) if config.strategy == "nes" else Evosax(config, num_dims)
