"""Inner-loop RL agents in pure JAX."""
