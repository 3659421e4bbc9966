"""Learned proxies of a real task (synthetic environments), their protocol and their model files."""

from synthenv.proxies.protocol import ProxyEnv, ProxyKind
from synthenv.proxies.se import SEConfig, SEParams, SyntheticEnv

__all__ = ["ProxyEnv", "ProxyKind", "SEConfig", "SEParams", "SyntheticEnv"]
