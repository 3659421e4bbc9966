"""Real tasks: the registry (step caps, solved thresholds; ``registry``) and the gymnax environments
behind it (``real.make_task(id)``)."""

from synthenv.tasks.registry import TASKS, TaskSpec, get_spec

__all__ = ["TASKS", "TaskSpec", "get_spec"]
