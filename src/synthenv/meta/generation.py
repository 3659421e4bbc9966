"""One generation of proxy learning as one compiled call: perturb -> train agents on the proxies ->
evaluate them on the real task -> update the ES."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from synthenv.agents.learning_curve import make_tested_train
from synthenv.evaluation import make_evaluate
from synthenv.meta import objectives
import numpy as np

from synthenv.meta.population import Stratum, make_stratified_runner
from synthenv.proxies.registry import kind_of


class GenerationStats(NamedTuple):
    fitness_mean: jax.Array
    fitness_max: jax.Array
    score_unperturbed: jax.Array
    """The SE's score: the lowest over the generation's inner algorithms of their unperturbed agents' mean."""
    real_env_steps: jax.Array
    train_steps_mean: jax.Array
    train_steps_max: jax.Array
    train_episodes_mean: jax.Array
    diverged: jax.Array
    unperturbed_by_agent: jax.Array
    """The unperturbed agents' mean score per inner algorithm of the generation."""


def make_member(agent, proxy_env, task, unravel, agent_config, shapes, eval_episodes):
    """``member(flat_weights, hp, key)``: train a fresh ``agent`` (an ``InnerAgent``) on the proxy env
    with these weights, score it on the real task.

    A member whose proxy produced inf/NaN (or whose training diverged) gets the task's worst return.
    """
    train = agent.make_train(agent_config, proxy_env, shapes, stop_rule=kind_of(proxy_env).stop_rule)
    evaluate = make_evaluate(task, agent.make_policy(agent_config), eval_episodes)

    def member(flat, hp, key):
        k_train, k_eval = jax.random.split(key)
        result = train(k_train, proxy_env.params_for(unravel(flat)), hp)
        returns, real_steps = evaluate(k_eval, result.params, hp)
        score = jnp.where(result.diverged, task.spec.min_return, jnp.mean(returns))
        return score, result.steps, result.episodes, result.diverged, real_steps

    return member


def make_rn_member(agent, rn_env, task, unravel, agent_config, shapes, objective: str, threshold: float,
                   max_episodes: int, window: int):
    """``member(flat_weights, hp, key)`` for a reward network: train a fresh ``agent`` on the RN-wrapped
    task with one real test episode after each training episode, score its curve by ``objective``
    (``synthenv.meta.objectives``). The real-env steps are the training steps and the tests' steps."""
    loop = agent.make_train(agent_config, rn_env, shapes, stop_rule="none")
    train = make_tested_train(loop, agent.make_policy(agent_config), task, max_episodes, window,
                              threshold if objective == "threshold" else None)

    def member(flat, hp, key):
        result, curve = train(key, rn_env.params_for(unravel(flat)), hp)
        value = objectives.score(objective, curve, threshold, window, task.spec.min_return, result.diverged)
        return value, result.steps, result.episodes, result.diverged, result.steps + curve.test_steps

    return member


def make_generation(strategy, algorithms: list[list[Stratum]], unperturbed_agents: int, n_devices: int | None = None,
                    agents_per_member: int = 1, common_draws: str = "pairs"):
    """``generation(es_state, key) -> (es_state, evaluated_mean, stats)``, jitted.

    ``algorithms[j]`` holds the shape strata of inner algorithm ``j``: each ``member`` trains and
    scores one agent (see ``make_member``), each ``sample(key)`` draws its hyperparameters; agent
    draw ``d`` falls in stratum ``d % len(algorithms[j])``. Every candidate is scored by ``agents_per_member``
    agents of each algorithm (different HPs and seeds; with varied HPs one agent's score is a noisy,
    often bimodal estimate of how well an SE trains agents), its fitness is their mean; each algorithm
    also trains ``unperturbed_agents`` agents on the unperturbed SE.

    ``common_draws`` (common random numbers): "pairs", the candidates of one draw slot (the two signs
    of a mirrored pair) share agent HPs and seeds; "population", every candidate trains the same
    ``agents_per_member`` agents (same HPs and seeds), so candidates differ only by their SE.
    """
    runs = [make_stratified_runner(strata, n_devices) for strata in algorithms]
    # Candidates sharing a draw slot (the two signs of a mirrored pair) share HPs and agent seeds.
    n_cands, k = int(strategy.num_candidates), agents_per_member
    draw_slots = np.asarray(strategy.draw_slots) if common_draws == "pairs" else np.zeros(n_cands, int)
    cand_slots = (draw_slots[:, None] * k + np.arange(k)[None, :]).reshape(-1)
    n_cand_draws = n_cands * k  # (some draws unused when slots are shared; keeps k=1 as before)
    slots = np.concatenate([cand_slots, n_cand_draws + np.arange(unperturbed_agents)])
    n_draws = n_cand_draws + unperturbed_agents

    def generation(es_state, key):
        k_ask, k_hp, k_agents, k_tell = jax.random.split(key, 4)
        evaluated_mean = strategy.mean(es_state)
        cands, aux, es_state = strategy.ask(k_ask, es_state)
        flats = jnp.concatenate([jnp.repeat(cands, k, axis=0),
                                 jnp.broadcast_to(evaluated_mean, (unperturbed_agents, cands.shape[1]))])
        outs = []
        for j, run in enumerate(runs):
            kh, ka = (k_hp, k_agents) if j == 0 else (jax.random.fold_in(k_hp, j), jax.random.fold_in(k_agents, j))
            outs.append(run(flats, jax.random.split(kh, n_draws), jax.random.split(ka, n_draws), slots))
        score, steps, episodes, diverged, real_steps = (jnp.stack(x) for x in zip(*outs))  # [algorithm, agent]
        by_agent = jnp.mean(score[:, n_cands * k:], axis=1)
        cand_scores = jnp.mean(score[:, : n_cands * k].reshape(len(runs), n_cands, k), axis=(0, 2))
        # (Transforms 5-7 compare fitness with the unperturbed score: the same mean over algorithms.)
        es_state, member_scores = strategy.tell(k_tell, es_state, cands, cand_scores, jnp.mean(by_agent), aux)
        stats = GenerationStats(
            fitness_mean=jnp.mean(member_scores), fitness_max=jnp.max(member_scores),
            score_unperturbed=jnp.min(by_agent), real_env_steps=jnp.sum(real_steps),
            train_steps_mean=jnp.mean(steps.astype(jnp.float32)), train_steps_max=jnp.max(steps),
            train_episodes_mean=jnp.mean(episodes.astype(jnp.float32)), diverged=jnp.sum(diverged),
            unperturbed_by_agent=by_agent)
        return es_state, evaluated_mean, stats

    return jax.jit(generation)


def make_confirmation(strata: list[Stratum], n_agents: int, n_devices: int | None = None):
    """``confirm(flat_se_params, key) -> (mean score, real-env steps)`` of ``n_agents`` fresh agents
    (fresh HPs and seeds, spread over the algorithm's shape ``strata``) trained on one SE, jitted: a
    second, independent sample for the "solved" test, so a lucky draw of unperturbed agents does not
    end the run."""
    run = make_stratified_runner(strata, n_devices)

    def confirm(flat, key):
        k_hp, k_agents = jax.random.split(key)
        score, *_, real_steps = run(jnp.broadcast_to(flat, (n_agents, flat.shape[0])), jax.random.split(k_hp, n_agents),
                                    jax.random.split(k_agents, n_agents), np.arange(n_agents))
        return jnp.mean(score), jnp.sum(real_steps)

    return jax.jit(confirm)
