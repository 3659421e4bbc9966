"""Learned proxies of a real task (synthetic environments, reward networks), their protocol and their
model files."""

from synthenv.proxies.bandit import BanditConfig, BanditParams, SyntheticBandit
from synthenv.proxies.protocol import ProxyEnv, ProxyKind
from synthenv.proxies.rn import RewardNetEnv, RNConfig, RNParams
from synthenv.proxies.se import SEConfig, SEParams, SyntheticEnv

__all__ = ["BanditConfig", "BanditParams", "SyntheticBandit", "ProxyEnv", "ProxyKind", "RNConfig", "RNParams", "RewardNetEnv", "SEConfig", "SEParams", "SyntheticEnv"]
