"""A learned SE as a Gymnasium environment, stepped by a NumPy forward pass.

An SE is three small MLPs (next state, reward, done) over ``concat(one_hot(action), obs)``. Inside
synthenv it is stepped in JAX, compiled together with the agents that train on it. Outside, most RL
code (Stable-Baselines3, CleanRL, anything written for Gymnasium) steps one environment, or a
vector of them, from Python, one call per step; a jitted JAX call per step costs tens of
microseconds of dispatch, several times the arithmetic of the SE. So these adapters step the SE in
NumPy (float32, the same arithmetic as :class:`synthenv.proxies.se.SENetwork`) and need no JAX from
their user:

- :func:`make_gymnasium_env` gives a :class:`SEGymnasiumEnv` (``gymnasium.Env``);
- :func:`make_gymnasium_vector_env` gives a :class:`SEVectorEnv` (``gymnasium.vector.VectorEnv``,
  one batched forward pass for all copies, Gymnasium's default next-step autoreset).

Both take the SE as ``(spec, config, params)``: the real task's :class:`~synthenv.tasks.TaskSpec`,
the SE's :class:`~synthenv.proxies.se.SEConfig`, and its parameters as the nested dict flax gives
(``params["state_net"]["hidden_0"]["kernel"]``; JAX or NumPy arrays).

Step semantics are the SE's: if any output (next observation, reward, done value) is non-finite the
step is *bad*: the observation and reward become 0 and the episode terminates. Otherwise the episode
terminates when the done output exceeds 0.5. ``truncated`` is ``t >= cap`` (the SE's step cap,
``config.max_steps``, by default the task's), as Gymnasium's ``TimeLimit``: it may be true together
with ``terminated``. ``info`` holds
the done net's raw output (``done_value``) and ``bad``.

The first observation of an episode is drawn from the real task's reset distribution, by the task's
own gymnax ``reset_env``: batches of 4,096 are sampled in one jitted call, keyed from the env's
``np_random``, and handed out one per reset, so ``reset(seed=...)`` is reproducible and a reset costs
microseconds. This is the only use of JAX here (compiled once per process and task).

When the SE has one hidden layer per net (the paper's architecture) the three nets run fused: one
first-layer matrix for all three (the one-hot part of the input becomes a row lookup) and one
block-diagonal output matrix, two matrix products per step. The vector env's products go to
NumPy's BLAS; on a machine whose cores are busy with other work, multithreaded BLAS can be several
times slower than one thread (``OPENBLAS_NUM_THREADS=1`` or ``threadpoolctl``).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

if TYPE_CHECKING:
    from synthenv.proxies.se import SEConfig
    from synthenv.tasks.registry import TaskSpec

NETS = ("state_net", "reward_net", "done_net")
RESET_BATCH = 4096
LEAKY_SLOPE = np.float32(0.01)  # as synthenv.nets.activation_fn's leaky_relu


def _quiet():
    """Non-finite outputs are a defined outcome of an SE step (a bad step), not a warning."""
    return np.errstate(invalid="ignore", over="ignore", divide="ignore")


def _activate(name: str, x: np.ndarray, slope: np.ndarray | None) -> np.ndarray:
    if name == "leaky_relu":
        return np.maximum(x, LEAKY_SLOPE * x)  # == where(x >= 0, x, 0.01 x) for a slope in (0, 1)
    if name == "tanh":
        return np.tanh(x)
    if name == "relu":
        return np.maximum(x, np.float32(0.0))
    if name == "prelu":
        return np.where(x >= 0, x, slope * x)
    raise ValueError(f"unknown activation {name!r}")


class NumpySE:
    """The SE's forward pass in NumPy float32: ``(obs, action) -> (next_obs, reward, done_value)``.

    ``forward`` takes a batch (``obs`` of shape ``(n, obs_dim)``, integer ``action`` of shape
    ``(n,)``) and returns one new array ``(n, obs_dim + 2)``: next observation, reward, done value.
    ``forward_one`` does the same for one unbatched state; :class:`BatchForward` for a fixed batch
    size without allocating.
    """

    def __init__(self, obs_dim: int, n_actions: int, config: SEConfig, params: Any):
        if hasattr(config, "validate"):
            config.validate()
        self.obs_dim, self.n_actions = obs_dim, n_actions
        self.activation, self.layers, self.hidden = config.activation, config.layers, config.hidden
        p = {net: {name: ({k: np.asarray(v, np.float32) for k, v in entry.items()} if hasattr(entry, "items")
                          else np.asarray(entry, np.float32))  # dense layers; prelu slopes
                   for name, entry in params[net].items()} for net in NETS}
        self.params = p
        h = self.hidden
        first = [p[net]["hidden_0"] for net in NETS]
        kernel = np.concatenate([f["kernel"] for f in first], axis=1)  # (n_actions + obs_dim, 3h)
        if kernel.shape != (n_actions + obs_dim, 3 * h):
            raise ValueError(f"SE first-layer kernels have shape {first[0]['kernel'].shape}, expected "
                             f"({n_actions + obs_dim}, {h})")
        bias = np.concatenate([f["bias"] for f in first])
        # one_hot(a) @ K + b is row a of K plus b: a lookup table per action. The other rows enter
        # as 0 * row, which is 0, or NaN where a weight is non-finite (as in the one-hot product).
        act_rows = kernel[:n_actions]
        with _quiet():
            zero_terms = (np.float32(0.0) * act_rows).sum(axis=0)
        self.w_act = np.ascontiguousarray(act_rows + bias + zero_terms)  # (n_actions, 3h)
        self.w_obs = np.ascontiguousarray(kernel[n_actions:])  # (obs_dim, 3h)
        self.w_first = np.concatenate([self.w_act, self.w_obs])  # for concat(one_hot, obs) inputs
        self.slope0 = None
        if self.activation == "prelu":
            self.slope0 = np.concatenate([np.broadcast_to(p[net]["prelu_0"], (h,)) for net in NETS])
        if self.layers == 1:
            w_out = np.zeros((3 * h, obs_dim + 2), np.float32)
            col = 0
            for i, (net, n_out) in enumerate(zip(NETS, (obs_dim, 1, 1))):
                w_out[i * h:(i + 1) * h, col:col + n_out] = p[net]["out"]["kernel"]
                col += n_out
            self.w_out = w_out
            self.b_out = np.concatenate([p[net]["out"]["bias"] for net in NETS])

    def forward(self, obs: np.ndarray, action: np.ndarray) -> np.ndarray:
        with _quiet():
            x = _activate(self.activation, obs @ self.w_obs + self.w_act[action], self.slope0)
            if self.layers == 1:
                return x @ self.w_out + self.b_out
            return self.deep_tail(x)

    def forward_one(self, obs: np.ndarray, action: int) -> np.ndarray:
        with _quiet():
            x = _activate(self.activation, obs.dot(self.w_obs) + self.w_act[action], self.slope0)
            if self.layers == 1:
                return x.dot(self.w_out) + self.b_out
            return self.deep_tail(x)

    def deep_tail(self, x: np.ndarray) -> np.ndarray:
        """Layers 2.. and the outputs, net by net, from the fused first layer's activations ``x``."""
        h, outs = self.hidden, []
        for i, net in enumerate(NETS):
            p, y = self.params[net], x[..., i * h:(i + 1) * h]
            for j in range(1, self.layers):
                y = _activate(self.activation, y @ p[f"hidden_{j}"]["kernel"] + p[f"hidden_{j}"]["bias"],
                              p.get(f"prelu_{j}"))
            outs.append(y @ p["out"]["kernel"] + p["out"]["bias"])
        return np.concatenate(outs, axis=-1)


class BatchForward:
    """:class:`NumpySE` for a fixed batch of ``n`` states in preallocated buffers (no allocation per
    step on the one-hidden-layer path). Write the observations into ``obs`` (a view of the input
    buffer), call ``run(actions)``; the result is a buffer overwritten by the next call."""

    def __init__(self, se: NumpySE, n: int):
        self.se, na = se, se.n_actions
        self.x = np.zeros((n, na + se.obs_dim), np.float32)
        self.onehot, self.obs = self.x[:, :na], self.x[:, na:]
        self.eye = np.eye(na, dtype=np.float32)
        self.h = np.empty((n, 3 * se.hidden), np.float32)
        self.tmp = np.empty_like(self.h)
        self.neg = np.empty(self.h.shape, bool)
        self.y = np.empty((n, se.obs_dim + 2), np.float32)

    def run(self, actions: np.ndarray) -> np.ndarray:
        with _quiet():
            return self._run(actions)

    def _run(self, actions: np.ndarray) -> np.ndarray:
        se, h = self.se, self.h
        np.take(self.eye, actions, axis=0, out=self.onehot)
        np.matmul(self.x, se.w_first, out=h)
        if se.activation == "leaky_relu":
            np.multiply(h, LEAKY_SLOPE, out=self.tmp)
            np.maximum(h, self.tmp, out=h)
        elif se.activation == "tanh":
            np.tanh(h, out=h)
        elif se.activation == "relu":
            np.maximum(h, np.float32(0.0), out=h)
        else:  # prelu
            np.less(h, 0, out=self.neg)
            np.multiply(h, se.slope0, out=self.tmp)
            np.copyto(h, self.tmp, where=self.neg)
        if se.layers > 1:
            self.y[:] = se.deep_tail(h)
            return self.y
        np.matmul(h, se.w_out, out=self.y)
        self.y += se.b_out
        return self.y


_RESET_FNS: dict[str, Any] = {}


def _reset_sampler(gymnax_id: str):
    """A jitted ``seed -> (RESET_BATCH, obs_dim)`` float32 sampler of the real task's first observations."""
    fn = _RESET_FNS.get(gymnax_id)
    if fn is None:
        import gymnax
        import jax
        import jax.numpy as jnp

        if gymnax_id.startswith("synthenv/"):
            import synthenv.tasks.cliff  # noqa: F401  (registers synthenv's own gymnax tasks)
        env, env_params = gymnax.make(gymnax_id)

        @jax.jit
        def fn(seed):
            keys = jax.random.split(jax.random.key(seed), RESET_BATCH)
            obs, _ = jax.vmap(env.reset_env, in_axes=(0, None))(keys, env_params)
            return obs.astype(jnp.float32)

        _RESET_FNS[gymnax_id] = fn
    return fn


class InitialObservations:
    """First observations of the real task, sampled in batches and handed out from NumPy."""

    def __init__(self, spec: TaskSpec):
        self.gymnax_id, self.obs_dim = spec.gymnax_id, spec.obs_dim
        self.clear()

    def clear(self) -> None:
        self._buffer = np.empty((0, self.obs_dim), np.float32)
        self._next = 0

    def take(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` observations, shape ``(n, obs_dim)``; new batches are keyed from ``rng``."""
        parts = []
        while n > 0:
            if self._next == len(self._buffer):
                seed = rng.integers(0, 2**32, dtype=np.uint32)
                self._buffer, self._next = np.asarray(_reset_sampler(self.gymnax_id)(seed)), 0
            k = min(n, len(self._buffer) - self._next)
            parts.append(self._buffer[self._next:self._next + k])
            self._next += k
            n -= k
        return parts[0].copy() if len(parts) == 1 else np.concatenate(parts)


def _check_spec(spec: TaskSpec) -> None:
    if spec.n_actions < 1:
        raise ValueError(f"SEs are for discrete-action tasks; {spec.id} is continuous")


class SEGymnasiumEnv(gymnasium.Env):
    """One learned SE as a ``gymnasium.Env`` (observations float32, ``Discrete`` actions).

    ``info`` of ``step``: ``done_value`` (the done net's raw output, float) and ``bad`` (some output
    was non-finite). Render mode ``"ansi"`` gives the step count and observation as text.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 50}

    def __init__(self, spec: TaskSpec, config: SEConfig, params: Any, render_mode: str | None = None):
        _check_spec(spec)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, "
                             f"got {render_mode!r}")
        self.task_spec, self.render_mode = spec, render_mode
        self.se = NumpySE(spec.obs_dim, spec.n_actions, config, params)
        self.max_steps = config.step_cap(spec)
        self.observation_space = spaces.Box(-np.inf, np.inf, (spec.obs_dim,), np.float32)
        self.action_space = spaces.Discrete(spec.n_actions)
        self._initial = InitialObservations(spec)
        self._n_actions, self._obs_dim = spec.n_actions, spec.obs_dim
        self._obs = np.zeros(spec.obs_dim, np.float32)
        self._t = 0
        # A spec lets gymnasium.make(env.spec) build fresh copies (and check_env test them).
        self.spec = gymnasium.envs.registration.EnvSpec(
            id=f"synthenv/SE-{spec.id}",
            entry_point=partial(SEGymnasiumEnv, spec, config, self.se.params),
            disable_env_checker=True,
        )

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if seed is not None:
            self._initial.clear()
        self._obs = self._initial.take(self.np_random, 1)[0]
        self._t = 0
        return self._obs.copy(), {}

    def step(self, action):
        a = int(action)
        if not 0 <= a < self._n_actions:
            raise ValueError(f"action {action!r} is outside Discrete({self._n_actions})")
        y = self.se.forward_one(self._obs, a)
        d = self._obs_dim
        done_value = float(y[d + 1])
        if np.isfinite(y).all():
            self._obs = y[:d]
            reward = float(y[d])
            terminated = done_value > 0.5
            bad = False
        else:
            self._obs = np.zeros(d, np.float32)
            reward, terminated, bad = 0.0, True, True
        self._t += 1
        return (self._obs.copy(), reward, terminated, self._t >= self.max_steps,
                {"done_value": done_value, "bad": bad})

    def render(self):
        if self.render_mode == "ansi":
            return f"t={self._t} obs={np.array2string(self._obs, precision=4)}"
        return None


class SEVectorEnv(VectorEnv):
    """``num_envs`` copies of one learned SE, stepped by one batched NumPy forward pass.

    Gymnasium 1.x vector API with next-step autoreset (``AutoresetMode.NEXT_STEP``): the step after
    an episode ends resets that copy (its action is ignored, reward 0, ``terminated`` and
    ``truncated`` False). ``info`` holds ``done_value`` and ``bad`` arrays, with Gymnasium's
    ``_done_value`` / ``_bad`` masks (false for copies that were reset in this step).
    ``reset(options={"reset_mask": mask})`` resets only the masked copies.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, spec: TaskSpec, config: SEConfig, params: Any, num_envs: int):
        _check_spec(spec)
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.task_spec, self.num_envs = spec, num_envs
        self._obs_dim, self._n_actions = spec.obs_dim, spec.n_actions
        self.se = NumpySE(spec.obs_dim, spec.n_actions, config, params)
        self.max_steps = config.step_cap(spec)
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (spec.obs_dim,), np.float32)
        self.single_action_space = spaces.Discrete(spec.n_actions)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._initial = InitialObservations(spec)
        self._batch = BatchForward(self.se, num_envs)  # its .obs holds the current observations
        self._t = np.zeros(num_envs, np.int64)
        self._autoreset = np.zeros(num_envs, bool)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None and not isinstance(seed, (int, np.integer)):
            raise TypeError(f"SEVectorEnv.reset takes one integer seed for all copies, got {seed!r}")
        super().reset(seed=seed)
        if seed is not None:
            self._initial.clear()
        mask = None if options is None else options.get("reset_mask")
        obs = self._batch.obs
        if mask is None:
            obs[:] = self._initial.take(self.np_random, self.num_envs)
            self._t[:] = 0
            self._autoreset[:] = False
        else:
            mask = np.asarray(mask, bool)
            obs[mask] = self._initial.take(self.np_random, int(mask.sum()))
            self._t[mask] = 0
            self._autoreset[mask] = False
        return obs.copy(), {}

    def step(self, actions):
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"expected actions of shape ({self.num_envs},), got {actions.shape}")
        if actions.dtype.kind not in "iu":
            actions = actions.astype(np.int64)
        if actions.min() < 0 or actions.max() >= self._n_actions:
            raise ValueError(f"actions must be in [0, {self._n_actions}), got {actions}")
        d = self._obs_dim
        y = self._batch.run(actions)
        done_value = y[:, d + 1].astype(np.float64)
        bad = ~np.isfinite(y).all(axis=1)
        if bad.any():
            y[bad] = 0.0
        obs = self._batch.obs
        obs[:] = y[:, :d]
        reward = y[:, d].astype(np.float64)
        terminated = (done_value > 0.5) | bad
        t = self._t
        t += 1
        reset = self._autoreset
        if reset.any():
            obs[reset] = self._initial.take(self.np_random, int(reset.sum()))
            reward[reset] = 0.0
            terminated[reset] = False
            bad[reset] = False
            t[reset] = 0
        truncated = t >= self.max_steps
        self._autoreset = terminated | truncated
        stepped = ~reset
        info = {"done_value": done_value, "_done_value": stepped, "bad": bad, "_bad": stepped}
        return obs.copy(), reward, terminated, truncated, info


def make_gymnasium_env(spec: TaskSpec, config: SEConfig, params: Any,
                       render_mode: str | None = None) -> SEGymnasiumEnv:
    """A ``gymnasium.Env`` that steps the SE ``(config, params)`` learned for the task ``spec``."""
    return SEGymnasiumEnv(spec, config, params, render_mode)


def make_gymnasium_vector_env(spec: TaskSpec, config: SEConfig, params: Any, num_envs: int) -> SEVectorEnv:
    """A ``gymnasium.vector.VectorEnv`` of ``num_envs`` copies of the SE ``(config, params)``."""
    return SEVectorEnv(spec, config, params, num_envs)


__all__ = ["NumpySE", "SEGymnasiumEnv", "SEVectorEnv", "make_gymnasium_env", "make_gymnasium_vector_env"]
