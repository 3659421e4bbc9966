"""Scoring a policy trained outside synthenv (Stable-Baselines3, CleanRL, ...) on a Gymnasium env."""

from __future__ import annotations


def greedy_returns(env, model, episodes: int, seed: int = 10_000) -> list[float]:
    """The return of each of ``episodes`` episodes of ``env`` (a ``gymnasium.Env``, reset with seeds
    ``seed``, ``seed + 1``, ...) acting by ``model.predict(obs, deterministic=True)``, the SB3 policy
    interface."""
    returns = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, done = 0.0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            total, done = total + float(reward), terminated or truncated
        returns.append(total)
    return returns
