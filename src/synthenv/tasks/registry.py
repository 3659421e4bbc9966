"""Registry of real tasks: each id's gymnax backend, step cap, solved threshold and return range.

The environments themselves are ``synthenv.tasks.real.RealTask`` (gymnax environments with the
registry's step cap); ``synthenv.tasks.real.make_task(id)`` builds one.
"""

from __future__ import annotations

from dataclasses import dataclass
from synthenv.errors import UsageError


@dataclass(frozen=True)
class TaskSpec:
    """What the rest of the library needs to know about one real task."""

    id: str
    gymnax_id: str
    max_steps: int
    solved_threshold: float
    min_return: float  # the worst possible episode return: the score a diverged member gets
    obs_dim: int
    n_actions: int  # discrete tasks: the number of actions; 0 for continuous tasks
    action_dim: int = 0  # continuous tasks: actions are float vectors in [-action_high, action_high]
    action_high: float = 0.0

    @property
    def continuous(self) -> bool:
        return self.n_actions == 0


TASKS: dict[str, TaskSpec] = {
    "CartPole-v0": TaskSpec("CartPole-v0", "CartPole-v1", 200, 195.0, 0.0, 4, 2),
    "CartPole-v1": TaskSpec("CartPole-v1", "CartPole-v1", 500, 475.0, 0.0, 4, 2),
    "Acrobot-v1": TaskSpec("Acrobot-v1", "Acrobot-v1", 500, -100.0, -500.0, 6, 3),
    # Continuous control, for the continuous agents. Pendulum has no official threshold: -200 is
    # our mark for a policy that swings up and balances from most starts.
    "Pendulum-v1": TaskSpec("Pendulum-v1", "Pendulum-v1", 200, -200.0, -3300.0, 3, 0, 1, 2.0),
    "MountainCarContinuous-v0": TaskSpec("MountainCarContinuous-v0", "MountainCarContinuous-v0", 999,
                                         90.0, -99.9, 2, 0, 1, 1.0),
}


def get_spec(task_id: str) -> TaskSpec:
    try:
        return TASKS[task_id]
    except KeyError:
        known = ", ".join(sorted(TASKS))
        raise UsageError(f"unknown env id {task_id!r}; known ids: {known}") from None
