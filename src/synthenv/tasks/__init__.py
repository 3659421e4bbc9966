"""Real tasks (JAX, via gymnax) and the registry that knows their step caps and solved thresholds."""

from synthenv.tasks.registry import TASKS, Task, TaskSpec, make_task

__all__ = ["TASKS", "Task", "TaskSpec", "make_task"]
