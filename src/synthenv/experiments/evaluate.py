"""Train fresh agents on an SE, an RN-wrapped task or the real task (the baseline) and test them on the real task."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from synthenv.agents.common import ON_PROXY, step_cap, with_protocol
from synthenv.agents.learning_curve import make_tested_train, steps_to_target
from synthenv.agents.registry import check_supports, split_entry
from synthenv.errors import UsageError
from synthenv.evaluation import make_evaluate
from synthenv.meta.config import TASK_DEFAULTS
from synthenv.meta.population import make_runner
from synthenv.proxies.files import load_proxy
from synthenv.tasks.real import make_task
from synthenv.tasks.registry import get_spec

def real_task_preset(module, spec) -> str:
    """The preset a new user gets for ``module`` on the real task ``spec``: its ``REAL_TASK_PRESETS``
    entry for the task id, else for ``"discrete"`` / ``"continuous"``, else ``small``."""
    table = module.REAL_TASK_PRESETS
    return table.get(spec.id) or table.get("continuous" if spec.continuous else "discrete") or "small"


def agent_config(module, agent: str, preset: str | None, env_id: str, trained_with: dict):
    """The config agents train with: on an SE without ``preset``, the SE's own DDQN config for DDQN;
    any other agent or preset takes the SE's training protocol (stop rule, step caps, see
    ``common.PROTOCOL_FIELDS``). Without ``preset``, an agent the SE was learned with (an inner agent
    ``NAME:PRESET``, or one that confirmed its solve, ``confirm_also``) gets that preset; others ``small``. On the real task (no SE) the default is the
    agent's preset for that task (``REAL_TASK_PRESETS``)."""
    inner = trained_with.get("agent")
    trained = dict(map(split_entry, [*trained_with.get("inner_agents", []), *trained_with.get("confirm_also", [])]))
    if inner and agent == "ddqn" and preset is None and trained.get("ddqn") is None:
        try:
            return module.Config(**inner), trained_with.get("preset", "custom")
        except TypeError as e:
            raise UsageError(f"the SE's training config has an unknown DDQN setting ({e})") from None
    if not trained_with:
        default = real_task_preset(module, get_spec(env_id))
    else:
        default = TASK_DEFAULTS.get(env_id, {}).get("preset", "small") if agent == "ddqn" else "small"
    preset = preset or trained.get(agent) or default
    config = module.resolve(preset)
    return (with_protocol(config, inner) if inner else config), preset


def with_budget(config, steps: int | None, stop_rule: str, fresh_steps: int | None = None):
    """``config`` with its training budget for an evaluation under ``stop_rule``: ``steps`` when given
    (the cap ``common.step_cap`` reads: ``proxy_max_steps`` on a proxy, ``max_steps`` on real
    dynamics), else at least ``fresh_steps`` on a proxy (its kind's default for this algorithm,
    ``ProxyKind.fresh_steps``)."""
    on_proxy = stop_rule in ON_PROXY
    if steps is None:
        if not on_proxy or fresh_steps is None or fresh_steps <= config.proxy_max_steps:
            return config
        steps = fresh_steps
    if not on_proxy:
        return replace(config, max_steps=steps)
    return replace(config, proxy_max_steps=steps, proxy_min_steps=min(steps, config.proxy_min_steps))


def make_train_and_test(module, config, shapes, task, train_env, rule: str, env_params, episodes: int,
                        n_devices: int | None = None, per_agent_params: bool = False, curves: bool = False,
                        test_threshold: float | None = None):
    """A compiled ``run(keys, hps, per_agent=None) -> dict``: agent ``i`` trains on ``train_env`` with key
    ``keys[i]`` and the hyperparameters ``hps[i]`` (a ``module.HParams`` with a leading axis, within
    ``shapes``), then is tested for ``episodes`` greedy episodes on the real task; all agents in one call
    split across devices. Built once, it compiles once for every call with the same number of agents
    (the batches of a hyperparameter search).

    ``env_params`` are every agent's params (None: the env's defaults); with ``per_agent_params``, the
    call's ``per_agent`` params have a leading axis (agent i trains on SE i: many SEs in one call).
    Returns numpy arrays: returns [agents, episodes], steps, episodes, diverged; with ``curves``, also
    the learning curve of each agent (``synthenv.agents.learning_curve``: one greedy real test episode
    after each training episode) as ``curve`` (a ``Curve`` of arrays with a leading agent axis); with
    ``test_threshold``, an agent also stops once the mean of its last ``stop_window`` tests reaches it.
    """
    spec = task.spec
    policy = module.make_policy(config)
    train = module.make_train(config, train_env, shapes, stop_rule=rule, threshold=spec.solved_threshold)
    if curves:
        train = make_tested_train(train, policy, task, config.max_episodes, config.stop_window, test_threshold)
    evaluate = make_evaluate(task, policy, episodes)

    def one_agent(key, hp, params):
        _, k_train, k_eval = jax.random.split(key, 3)  # the first key draws the agent's HPs in train_and_test
        result = train(k_train, params if per_agent_params else env_params, hp)
        result, curve = result if curves else (result, None)
        returns, _ = evaluate(k_eval, result.params, hp)
        returns = jnp.where(result.diverged, spec.min_return, returns)
        return returns, result.steps, result.episodes, result.diverged, curve

    compiled = jax.jit(make_runner(one_agent, n_devices))

    def run(keys, hps, per_agent=None) -> dict:
        per_agent = jnp.zeros((len(keys),)) if per_agent is None else per_agent
        returns, steps, eps, diverged, curve = jax.device_get(compiled(keys, hps, per_agent))
        out = {"returns": np.asarray(returns), "steps": np.asarray(steps), "episodes": np.asarray(eps),
               "diverged": np.asarray(diverged)}
        return {**out, "curve": curve} if curves else out

    return run


def train_and_test(module, config, task, train_env, rule: str, env_params, n_agents: int, episodes: int,
                   vary_hparams: bool, seed: int, n_devices: int | None = None,
                   per_agent_params: bool = False, curves: bool = False,
                   test_threshold: float | None = None) -> dict:
    """Train ``n_agents`` fresh agents of ``module`` on ``train_env`` and test each for ``episodes``
    greedy episodes on the real task, in one compiled call split across devices
    (``make_train_and_test``), each with the config's hyperparameters or (``vary_hparams``) its own draw.

    ``train_env`` is any gymnax environment, ``env_params`` its params for every agent (None: its
    defaults); with ``per_agent_params``, params with a leading axis of size ``n_agents`` (agent i
    trains on SE i: many SEs in one call). Returns numpy arrays: returns [n_agents, episodes], steps, episodes,
    diverged, hparams (and with ``curves`` the learning curves, see ``make_train_and_test``).
    """
    keys = jax.random.split(jax.random.key(seed), n_agents)
    draw = jax.vmap(lambda k: module.sample_hparams(jax.random.split(k, 3)[0], config, vary_hparams))
    hps = jax.jit(draw)(keys)  # compiled, as it was inside the training call: the same bits
    run = make_train_and_test(module, config, module.max_shapes(config, vary_hparams), task, train_env, rule,
                              env_params, episodes, n_devices, per_agent_params, curves, test_threshold)
    result = run(keys, hps, env_params if per_agent_params else None)
    return {**result, "hparams": {k: np.asarray(v) for k, v in jax.device_get(hps)._asdict().items()}}


def evaluate_agents(proxy: str | Path | None = None, env: str | None = None, agent: str = "ddqn",
                    agents: int = 16, episodes: int = 10, vary_hparams: bool = False,
                    preset: str | None = None, seed: int = 0, n_devices: int | None = None,
                    target: float | None = None, icm: bool = False, steps: int | None = None) -> dict:
    """Returns every test return, their mean, per-agent training steps and episodes, solved fraction,
    and each agent's learning curve (one greedy real test episode after each training episode) with
    ``steps_to_target``: its training steps when a test first reached ``target`` (default: the task's
    solved threshold; None where none did). Agents on a synthetic bandit have no curves (its episodes
    are single steps): ``curves`` is empty and ``steps_to_target`` None.

    ``proxy`` is an SE or synthetic-bandit file (agents train on it alone, by its stop rule) or an RN file (agents train
    on the real dynamics with its reward and stop once the mean of their last ``stop_window`` tests
    reaches the task's threshold); without it agents train on the real task ``env``. ``agent`` names
    any registered agent (``synthenv.agents.registry``); ``preset`` one of its presets. ``icm``: the
    agents train with the ICM curiosity bonus (``synthenv.agents.icm``) on top of their env's reward.
    ``steps``: each agent's step cap (on an SE or bandit ``proxy_max_steps``, else ``max_steps``);
    None: the agent's own, except on a kind with a longer default for it (``ProxyKind.fresh_steps``:
    fresh PPO agents on a synthetic bandit train 40,000 steps).
    """
    if agents < 1 or episodes < 1:
        raise UsageError(f"--agents and --episodes must be >= 1, got {agents} and {episodes}")
    if steps is not None and steps < 1:
        raise UsageError(f"--steps must be >= 1, got {steps}")
    if proxy is None and env is None:
        raise UsageError("give --proxy (an SE or RN file) or --env (train on the real task)")
    trained_with, test_threshold, kind, real_dynamics, fresh_steps = {}, None, None, True, {}
    if proxy is not None:
        loaded = load_proxy(proxy, env_id=env)
        kind = loaded.kind.name
        task, train_env, env_params = loaded.env.task, loaded.env, loaded.env.default_params
        real_dynamics = loaded.kind.real_dynamics
        rule = loaded.kind.stop_rule
        if real_dynamics:
            test_threshold = task.spec.solved_threshold
        trained_with = loaded.training_config
        fresh_steps = loaded.kind.fresh_steps
    else:
        task = make_task(env)
        train_env, env_params, rule = task, None, "threshold"
    if icm:
        from synthenv.agents.icm import ICMEnv

        train_env = ICMEnv(train_env)
    spec = task.spec
    target = spec.solved_threshold if target is None else float(target)
    if not np.isfinite(target):
        raise UsageError(f"--target must be a finite return, got {target}")
    module = check_supports(agent, spec.continuous, spec.id)
    config, preset = agent_config(module, agent, preset, spec.id, trained_with)
    config = with_budget(config, steps, rule, fresh_steps.get(agent))
    t = time.perf_counter()
    # A bandit's episodes are single steps: a real test after each would cost a test per step.
    curves = rule != "budget"
    r = train_and_test(module, config, task, train_env, rule, env_params, agents, episodes, vary_hparams,
                       seed, n_devices, curves=curves, test_threshold=test_threshold)
    returns, steps = r["returns"], r["steps"]
    per_agent = returns.mean(axis=1)
    if curves:
        curve = r["curve"]
        to_target, counts = np.asarray(steps_to_target(curve, target)), np.asarray(curve.count)
        curve_rows = [{"steps": np.asarray(curve.steps)[i, :n].tolist(),
                       "returns": np.asarray(curve.returns)[i, :n].tolist()} for i, n in enumerate(counts)]
        test_steps = np.asarray(curve.test_steps).tolist()
    else:
        to_target, curve_rows, test_steps = np.full(agents, -1), [], [0] * agents
    real_train = steps if real_dynamics else np.zeros_like(steps)
    return {
        "proxy": str(proxy) if proxy is not None else None,
        "proxy_kind": kind,
        "icm": icm,
        "env": spec.id,
        "agent": agent,
        "preset": preset,
        "vary_hparams": vary_hparams,
        "seed": seed,
        "episodes_per_agent": episodes,
        "step_cap": step_cap(config, rule),
        "returns": returns.reshape(-1).tolist(),
        "returns_per_agent": per_agent.tolist(),
        "mean_return": float(returns.mean()),
        "train_steps": steps.tolist(),
        "train_episodes": r["episodes"].tolist(),
        "mean_train_steps": float(np.mean(steps)),
        "real_train_steps": real_train.tolist(),
        "solved_fraction": float(np.mean(per_agent >= spec.solved_threshold)),
        "solved_threshold": spec.solved_threshold,
        "target": target,
        "steps_to_target": [None if x < 0 else int(x) for x in to_target],
        "curves": curve_rows,
        "test_steps": test_steps,
        "diverged": int(np.sum(r["diverged"])),
        "hparams": {k: v.tolist() for k, v in r["hparams"].items()},
        "wall_seconds": time.perf_counter() - t,
    }
