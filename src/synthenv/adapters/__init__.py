"""Adapters that take learned proxies out of synthenv: Gymnasium environments of an SE and a
Gymnasium reward wrapper for a reward network."""
