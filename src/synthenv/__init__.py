"""synthenv: learn synthetic environments (neural-network MDPs) for reinforcement learning.

After Ferreira et al., "Learning Synthetic Environments and Reward Networks for RL" (ICLR 2022).
Importing this package does not import JAX; ``load`` does.
"""

__version__ = "0.1.0"


def load(path, env_id=None):
    """Load a learned SE from a model file: ``se = synthenv.load("runs/cartpole/se.safetensors")``.

    Returns a :class:`synthenv.proxies.files.LoadedSE` with ``reset(key)`` and
    ``step(key, state, action)``. ``env_id`` (optional) checks which task it was learned for.
    """
    from synthenv.proxies.files import load_se

    return load_se(path, env_id)


__all__ = ["load", "__version__"]
