"""Learning curves: one greedy test episode on the real task after each training episode.

An agent that trains on a reward network (or on the real task, or on an SE) is judged by how fast
its *real* test return rises, measured in its training steps. :func:`make_tested_train` drives an
agent's :class:`~synthenv.agents.common.TrainLoop` episode by episode: it steps training until the
agent's episode count grows (PPO: until a rollout ended an episode), pauses it, plays one episode
of the real task with the agent's greedy policy, records the return, and goes on. Training stops on
the agent's own rules and caps, after ``max_tests`` tests, or, with a ``threshold``, once the mean
of the last ``window`` test returns reaches it (the paper's stop rule for RN training).

Everything is pure and vmappable; under ``vmap`` an agent whose episode ended waits (masked) for
the others of its batch before the tests run.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from synthenv.agents.common import TrainLoop, TrainResult
from synthenv.evaluation import make_evaluate


PAUSE_CHUNK = 8
"""Training steps per loop iteration between tests: an agent whose episode ended idles (masked) for at
most this many steps less one; fewer cost more loop overhead."""


class Curve(NamedTuple):
    """The tests of one agent, in order; entries past ``count`` are NaN (returns) and -1 (steps)."""

    returns: jax.Array
    """[max_tests] real test return of each test."""
    steps: jax.Array
    """[max_tests] the agent's training steps when the test ran."""
    lengths: jax.Array
    """[max_tests] the training episode's length before each test (the AUC objective's weight)."""
    count: jax.Array
    """Tests run."""
    test_steps: jax.Array
    """Real-env steps the tests took."""
    reached: jax.Array
    """Whether the mean of the last ``window`` test returns reached the threshold (then training stopped)."""

    @staticmethod
    def init(max_tests: int) -> "Curve":
        return Curve(jnp.full((max_tests,), jnp.nan, jnp.float32), jnp.full((max_tests,), -1, jnp.int32),
                     jnp.zeros((max_tests,), jnp.int32), jnp.int32(0), jnp.int32(0), jnp.bool_(False))

    def add(self, ret, steps, length, test_steps) -> "Curve":
        i = self.count
        return self._replace(returns=self.returns.at[i].set(ret), steps=self.steps.at[i].set(steps),
                             lengths=self.lengths.at[i].set(length), count=i + 1,
                             test_steps=self.test_steps + test_steps)

    def last_mean(self, window: int) -> jax.Array:
        """Mean of the last ``window`` test returns (fewer at the start; NaN before any test)."""
        idx = jnp.arange(self.returns.shape[0])
        take = (idx < self.count) & (idx >= self.count - window)
        return jnp.sum(jnp.where(take, self.returns, 0.0)) / jnp.sum(take)


def steps_to_target(curve: Curve, target: float) -> jax.Array:
    """Training steps at the first test whose return reached ``target``; -1 if none did (any leading
    batch axes)."""
    hit = (jnp.arange(curve.returns.shape[-1]) < curve.count[..., None]) & (curve.returns >= target)
    first = jnp.take_along_axis(curve.steps, jnp.argmax(hit, axis=-1)[..., None], axis=-1)[..., 0]
    return jnp.where(jnp.any(hit, axis=-1), first, -1)


def make_tested_train(loop: TrainLoop, policy: Callable, task, max_tests: int, window: int = 10,
                      threshold: float | None = None) -> Callable[[jax.Array, Any, Any], tuple[TrainResult, Curve]]:
    """``train(key, env_params, hp) -> (TrainResult, Curve)``: ``loop`` trains on its env with
    ``env_params``; after each training episode one greedy episode of ``task`` (the real task, its
    default params) with ``policy(params, hp, obs)`` is a test. With ``threshold``, training stops
    once the mean of the last ``window`` test returns (at least ``window`` tests) reaches it."""
    test = make_evaluate(task, policy, 1)

    def train(key, env_params, hp):
        k_train, k_test = jax.random.split(key)

        def one_episode(s):
            # Train until the episode count grows: the agent is paused (its stop flag set) from the step
            # that ended the episode; ``own`` keeps the stops of the agent's own rules and caps.
            start = s.ep.episodes

            def step(c):
                s, own = c
                active = ~s.stopped
                s = loop.step(s, env_params, hp)
                own = own | (active & s.stopped)
                return loop.set_stopped(s, s.stopped | (s.ep.episodes > start)), own

            def chunk(c):
                return jax.lax.scan(lambda c, _: (step(c), None), c, None, length=PAUSE_CHUNK)[0]

            s, own = jax.lax.while_loop(lambda c: ~c[0].stopped, chunk, (s, s.stopped))
            return loop.set_stopped(s, own)

        def go_on(carry):
            s, curve, _, _ = carry
            return ~s.stopped & (curve.count < max_tests) & ~curve.reached

        def round_(carry):
            s, curve, k, steps_before = carry
            s = one_episode(s)
            k, k_ep = jax.random.split(k)
            returns, test_steps = test(k_ep, loop.result(s).params, hp)
            curve = curve.add(returns[0], s.ep.steps, s.ep.steps - steps_before, test_steps)
            if threshold is not None:
                curve = curve._replace(reached=(curve.count >= window) & (curve.last_mean(window) >= threshold))
            return s, curve, k, s.ep.steps

        s = loop.init(k_train, env_params, hp)
        s, curve, _, _ = jax.lax.while_loop(go_on, round_, (s, Curve.init(max_tests), k_test, s.ep.steps))
        return loop.result(s), curve

    return train
