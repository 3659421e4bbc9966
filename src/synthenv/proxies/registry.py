"""Proxy kinds by model-file kind (``synthenv.proxies.protocol.ProxyKind``)."""

from __future__ import annotations

from synthenv.errors import UsageError
from synthenv.proxies.bandit import BanditConfig, SyntheticBandit
from synthenv.proxies.protocol import ProxyKind
from synthenv.proxies.rn import RewardNetEnv, RNConfig
from synthenv.proxies.se import SEConfig, SyntheticEnv

# Fresh PPO agents on a learned bandit train 40,000 steps, twice their own proxy cap: PPO is not in the
# ES's loop, and on six CartPole-v1 bandits its 16 fresh agents averaged 479.6-500.0 at 20,000 steps and
# 493.5-500.0 at 40,000. DDQN keeps the budget the bandit was learned with: trained 10,000 steps in
# place of 2,000 it gained on two bandits in seven and lost on three (500.0 -> 465.9), the bandit
# being shaped for the policy its inner agents reach (docs/defaults.md).
BANDIT_FRESH_STEPS = {"ppo": 40_000}

PROXIES: dict[str, ProxyKind] = {
    "synthetic_env": ProxyKind("se", "synthetic_env", SEConfig, SyntheticEnv,
                               "synthetic environment: learned dynamics, reward and done (discrete actions)"),
    "synthetic_bandit": ProxyKind("bandit", "synthetic_bandit", BanditConfig, SyntheticBandit,
                                  "synthetic contextual bandit: learned first states and reward, one-step "
                                  "episodes (discrete actions)", stop_rule="budget", fresh_steps=BANDIT_FRESH_STEPS),
    "reward_network": ProxyKind("rn", "reward_network", RNConfig, RewardNetEnv,
                                "reward network: real dynamics, learned reward (four variants, + info; linear-info)",
                                stop_rule="none", real_dynamics=True),
}


def get_kind(file_kind: str) -> ProxyKind:
    try:
        return PROXIES[file_kind]
    except KeyError:
        raise UsageError(f"unknown proxy kind {file_kind!r}; known kinds: {', '.join(PROXIES)}") from None


def kind_of(env) -> ProxyKind:
    """The registered kind of a proxy env."""
    for kind in PROXIES.values():
        if isinstance(env, kind.env_type):
            return kind
    raise UsageError(f"{type(env).__name__} is not a registered proxy kind")
