"""HalfCheetah-v5, Gymnasium's MuJoCo task, stepped on the host from inside JAX.

MuJoCo is not JAX: a step leaves the compiled program through ``jax.pure_callback`` and MuJoCo
integrates it in NumPy. Under ``vmap`` (a population of agents) one callback receives the whole batch
(``vmap_method="expand_dims"``) and steps it in one loop, so the agents' training stays one compiled,
vmapped program and only the physics runs on the host. The state is MuJoCo's (``qpos``, ``qvel`` and
the solver's warm start ``qacc_warmstart``) held as JAX arrays, so the task is a gymnax environment
like the others: ``reset(key, params)``, ``step(key, state, action, params)``.

The dynamics, observation, reward and cap are Gymnasium's ``HalfCheetah-v5``: five MuJoCo steps per
action, observation ``qpos[1:]`` and ``qvel`` (17 numbers), reward ``forward velocity - 0.1 *
|action|^2``, never terminal, truncated at 1,000 steps; the first state adds ``U(-0.1, 0.1)`` to
the initial positions and ``0.1 * N(0, 1)`` to the velocities (drawn from the JAX key). The state is
float32 between steps (MuJoCo computes in float64), so a trajectory matches Gymnasium's to float32
precision over short horizons and drifts apart over long ones (the task is chaotic).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from synthenv.environment import TaskEnv
from synthenv.errors import UsageError
from synthenv.tasks.registry import TaskSpec

FRAME_SKIP = 5
CTRL_COST = 0.1
RESET_NOISE = 0.1


@struct.dataclass
class CheetahState:
    qpos: jax.Array
    qvel: jax.Array
    warmstart: jax.Array
    time: jax.Array


@struct.dataclass
class CheetahParams:
    max_steps_in_episode: int = struct.field(pytree_node=False, default=1000)


class _Simulator:
    """One MuJoCo model; steps a batch of states one after the other. MuJoCo runs on threads of our
    own (it crashed the process when run on XLA's callback threads), one ``MjData`` per thread (the
    population's devices call at once; the model is read-only)."""

    def __init__(self):
        try:
            import mujoco
            from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv
        except ImportError as e:
            raise UsageError(f"HalfCheetah-v5 needs MuJoCo: pip install 'synthenv[mujoco]' ({e})") from None
        env = HalfCheetahEnv()
        self.mujoco, self.model = mujoco, env.model
        self.local = threading.local()
        self.workers = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="mujoco")
        self.init_qpos, self.init_qvel = env.init_qpos.copy(), env.init_qvel.copy()
        self.dt = env.dt
        env.close()

    def step(self, qpos, qvel, warmstart, action):
        """``(qpos, qvel, warmstart)`` after one action (``FRAME_SKIP`` MuJoCo steps) of each row."""
        return self.workers.submit(self._step, qpos, qvel, warmstart, action).result()

    def _step(self, qpos, qvel, warmstart, action):
        qpos, qvel, warmstart = (np.asarray(x, np.float64) for x in (qpos, qvel, warmstart))
        action = np.asarray(action, np.float64)
        out_qpos, out_qvel, out_warm = np.empty_like(qpos), np.empty_like(qvel), np.empty_like(warmstart)
        d = getattr(self.local, "data", None)
        if d is None:
            d = self.local.data = self.mujoco.MjData(self.model)
        for i in range(qpos.shape[0]):
            d.qpos[:], d.qvel[:], d.qacc_warmstart[:], d.ctrl[:] = qpos[i], qvel[i], warmstart[i], action[i]
            self.mujoco.mj_step(self.model, d, nstep=FRAME_SKIP)
            out_qpos[i], out_qvel[i], out_warm[i] = d.qpos, d.qvel, d.qacc_warmstart
        return (out_qpos.astype(np.float32), out_qvel.astype(np.float32), out_warm.astype(np.float32))


_SIMULATOR: _Simulator | None = None


def simulator() -> _Simulator:
    global _SIMULATOR
    if _SIMULATOR is None:
        _SIMULATOR = _Simulator()
    return _SIMULATOR


def _batched(step):
    """``step`` on arrays with any (broadcast) leading batch axes: flattened to one batch and back."""

    def call(*arrays):
        lead = np.broadcast_shapes(*(a.shape[:-1] for a in arrays))
        flat = [np.broadcast_to(a, lead + a.shape[-1:]).reshape(-1, a.shape[-1]) for a in arrays]
        return tuple(x.reshape(lead + x.shape[-1:]) for x in step(*flat))

    return call


class HalfCheetahTask(TaskEnv):
    """Gymnasium's HalfCheetah-v5 (MuJoCo on the host) as a gymnax environment."""

    def __init__(self, spec: TaskSpec):
        super().__init__(spec)
        self.sim = simulator()
        self.nq, self.nv = self.sim.model.nq, self.sim.model.nv

    @property
    def default_params(self) -> CheetahParams:
        return CheetahParams(self.spec.max_steps)

    def _obs(self, qpos, qvel):
        return jnp.concatenate([qpos[1:], qvel]).astype(jnp.float32)

    def reset_env(self, key: jax.Array, params: CheetahParams):
        k_pos, k_vel = jax.random.split(key)
        qpos = jnp.asarray(self.sim.init_qpos, jnp.float32) + jax.random.uniform(
            k_pos, (self.nq,), minval=-RESET_NOISE, maxval=RESET_NOISE)
        qvel = jnp.asarray(self.sim.init_qvel, jnp.float32) + RESET_NOISE * jax.random.normal(k_vel, (self.nv,))
        state = CheetahState(qpos, qvel, jnp.zeros((self.nv,), jnp.float32), jnp.int32(0))
        return self._obs(qpos, qvel), state

    def step_env(self, key: jax.Array, state: CheetahState, action: jax.Array, params: CheetahParams):
        action = jnp.asarray(action, jnp.float32).reshape(self.spec.action_dim)
        shapes = (jax.ShapeDtypeStruct((self.nq,), jnp.float32), jax.ShapeDtypeStruct((self.nv,), jnp.float32),
                  jax.ShapeDtypeStruct((self.nv,), jnp.float32))
        qpos, qvel, warm = jax.pure_callback(_batched(self.sim.step), shapes, state.qpos, state.qvel,
                                             state.warmstart, action, vmap_method="expand_dims")
        forward = (qpos[0] - state.qpos[0]) / self.sim.dt
        ctrl = CTRL_COST * jnp.sum(action**2)
        new = CheetahState(qpos, qvel, warm, state.time + 1)
        info = {"reward_forward": forward, "reward_ctrl": -ctrl, "x_velocity": forward}
        return self._obs(qpos, qvel), new, (forward - ctrl).astype(jnp.float32), jnp.bool_(False), info

    def is_terminated(self, state: CheetahState, params: Any) -> jax.Array:
        return jnp.bool_(False)
