"""Adapters that take a learned SE out of synthenv into other RL ecosystems (Gymnasium)."""
