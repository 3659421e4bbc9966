"""synthenv: learn synthetic environments (neural-network MDPs) for reinforcement learning.

After Ferreira et al., "Learning Synthetic Environments and Reward Networks for RL" (ICLR 2022).
Importing this package does not import JAX; ``load`` does.
"""

__version__ = "0.5.0"


def load(path, env_id=None):
    """Load a learned proxy from a model file: ``se = synthenv.load("runs/cartpole/se.safetensors")``.

    Returns a :class:`synthenv.proxies.files.LoadedProxy`: ``se.as_gymnax()`` (a gymnax environment
    with the weights bound), ``se.as_gymnasium()``, ``se.as_gymnasium_vector(n)``, ``se.metadata``.
    ``env_id`` (optional) checks which task it was learned for.
    """
    from synthenv.proxies.files import load_proxy

    return load_proxy(path, env_id)


__all__ = ["load", "__version__"]
