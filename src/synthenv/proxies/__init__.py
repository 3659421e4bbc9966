"""Learned proxies of a real task: synthetic environments (SEs)."""

from synthenv.proxies.se import SEConfig, SyntheticEnv

__all__ = ["SEConfig", "SyntheticEnv"]
