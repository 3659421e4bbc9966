"""Cliff walking (Sutton & Barto, Example 6.6) as a gymnax environment, in two variants.

The grid has 4 rows and 12 columns, cells numbered ``row * 12 + col``. The agent starts at the
bottom-left cell (3, 0) = 36; the goal is the bottom-right cell (3, 11) = 47; the cliff is the
bottom row between them, cells 37..46. Actions are Gymnasium's: 0 up, 1 right, 2 down, 3 left. A
move off the grid leaves the agent where it is. Every step costs -1, a step into the cliff -100.
Dynamics are deterministic (Gymnasium's ``CliffWalking-v1`` defaults to ``is_slippery=False``; its
slippery variant is a separate id and is not provided here).

The observation is the one-hot vector of the agent's cell (48 float32 values), because the agents
of this library take flat float observations; ``argmax(obs)`` is Gymnasium's integer observation.

The variants (``CliffWalking(variant)``), registered with gymnax as ``synthenv/<variant>``:

``Cliff-v0``, the reward-network paper's task
    A step into the cliff ends the episode with reward -100 (the agent stays in the cliff cell, so
    the final observation is that cell). The step into the goal ends the episode with reward 0, not
    -1: the 13-step optimal path (up, 11 x right, down) returns 12 x (-1) + 0 = -12, the optimum the
    paper states. Step cap 50. The worst episode return is -149 (49 steps of -1, then the cliff).

``CliffWalking-v1``, Gymnasium's semantics
    A step into the cliff gives -100 and puts the agent back on the start cell; the episode goes
    on. The step into the goal gives -1 and ends the episode, so the optimum is -13. Gymnasium
    registers this id without a time limit (``gymnasium.spec("CliffWalking-v1").max_episode_steps``
    is ``None``): its episodes are unbounded. A gymnax environment needs a finite cap, so ours is
    200 steps, about 15 times the optimal path: room for an exploring agent to reach the goal, even
    after some falls. Since a step out of the start cell to the right falls, every step can cost
    -100: the worst episode return is -100 x 200 = -20000.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

N_ROWS, N_COLS = 4, 12
N_CELLS = N_ROWS * N_COLS
START = (N_ROWS - 1) * N_COLS  # (3, 0) = 36
GOAL = N_CELLS - 1  # (3, 11) = 47
STEP_REWARD, CLIFF_REWARD = -1.0, -100.0
# (d_row, d_col) of the actions 0 up, 1 right, 2 down, 3 left (Gymnasium's order)
_MOVES = jnp.array(((-1, 0), (0, 1), (1, 0), (0, -1)), dtype=jnp.int32)


class Variant(NamedTuple):
    """What distinguishes the two cliff tasks."""

    cliff_terminates: bool  # a step into the cliff ends the episode (else: back to the start)
    goal_reward: float  # the reward of the step into the goal
    max_steps: int  # the default step cap


VARIANTS: dict[str, Variant] = {
    "Cliff-v0": Variant(cliff_terminates=True, goal_reward=0.0, max_steps=50),
    "CliffWalking-v1": Variant(cliff_terminates=False, goal_reward=STEP_REWARD, max_steps=200),
}


@struct.dataclass
class EnvState(environment.EnvState):
    """The agent's cell (``row * 12 + col``, int32) and the steps taken this episode (``time``, int32)."""

    pos: jax.Array


@struct.dataclass
class EnvParams(environment.EnvParams):
    """The step cap (``truncated`` once ``time >= max_steps_in_episode``)."""

    max_steps_in_episode: int = 50


def _is_cliff(cell: jax.Array) -> jax.Array:
    return (cell > START) & (cell < GOAL)


class CliffWalking(environment.Environment[EnvState, EnvParams]):
    """The 4 x 12 cliff-walking grid; ``variant`` is ``"Cliff-v0"`` or ``"CliffWalking-v1"``."""

    def __init__(self, variant: str = "Cliff-v0"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown cliff variant {variant!r}; known: {', '.join(VARIANTS)}")
        self.variant = variant
        self.rules = VARIANTS[variant]

    @property
    def default_params(self) -> EnvParams:
        return EnvParams(max_steps_in_episode=self.rules.max_steps)

    @property
    def name(self) -> str:
        return self.variant

    @property
    def num_actions(self) -> int:
        return 4

    def step_env(self, key: jax.Array, state: EnvState, action: Any, params: EnvParams):
        move = _MOVES[jnp.clip(jnp.asarray(action, jnp.int32), 0, 3)]
        row = jnp.clip(state.pos // N_COLS + move[0], 0, N_ROWS - 1)
        col = jnp.clip(state.pos % N_COLS + move[1], 0, N_COLS - 1)
        cell = (row * N_COLS + col).astype(jnp.int32)
        fell, goal = _is_cliff(cell), cell == GOAL
        reward = jnp.where(fell, CLIFF_REWARD, jnp.where(goal, self.rules.goal_reward, STEP_REWARD))
        if self.rules.cliff_terminates:
            pos, terminated = cell, fell | goal
        else:
            pos, terminated = jnp.where(fell, jnp.int32(START), cell), goal
        state = EnvState(time=jnp.asarray(state.time + 1, jnp.int32), pos=pos)
        return (self.get_obs(state), state, reward.astype(jnp.float32), terminated,
                {"fell": fell})

    def reset_env(self, key: jax.Array, params: EnvParams):
        state = EnvState(time=jnp.int32(0), pos=jnp.int32(START))
        return self.get_obs(state), state

    def get_obs(self, state: EnvState, params: Any = None, key: Any = None) -> jax.Array:
        return jax.nn.one_hot(state.pos, N_CELLS, dtype=jnp.float32)

    def is_terminated(self, state: EnvState, params: EnvParams) -> jax.Array:
        at_goal = state.pos == GOAL
        return (at_goal | _is_cliff(state.pos)) if self.rules.cliff_terminates else at_goal

    def action_space(self, params: Any = None) -> spaces.Discrete:
        return spaces.Discrete(4)

    def observation_space(self, params: Any = None) -> spaces.Box:
        return spaces.Box(0.0, 1.0, (N_CELLS,), jnp.float32)

    def state_space(self, params: EnvParams) -> spaces.Dict:
        return spaces.Dict({"pos": spaces.Discrete(N_CELLS),
                            "time": spaces.Discrete(params.max_steps_in_episode + 1)})


def register() -> None:
    """Add ``synthenv/Cliff-v0`` and ``synthenv/CliffWalking-v1`` to ``gymnax.make`` (idempotent)."""
    import gymnax

    for variant in VARIANTS:
        env_id = f"synthenv/{variant}"
        if env_id not in gymnax.registered_envs:
            gymnax.register(env_id, partial(CliffWalking, variant))


register()
