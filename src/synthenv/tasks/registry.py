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
    info_keys: tuple[str, ...] = ()
    """The task's info vector: the step-info entries, in this order, that an RN "+ info" reads (the
    reward's components where the task reports them); empty: the task has none."""

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
    # Cliff walking on the 4x12 grid (synthenv.tasks.cliff), one-hot cell observations.
    # Cliff-v0 is the reward-network paper's: the cliff is terminal (-100), the goal step rewards 0,
    # so the optimum is -12 and -20 is the paper's threshold; worst return: 49 x (-1) then the cliff.
    "Cliff-v0": TaskSpec("Cliff-v0", "synthenv/Cliff-v0", 50, -20.0, -149.0, 48, 4),
    # CliffWalking-v1 is Gymnasium's: the cliff sends the agent back to the start (-100), the goal step
    # rewards -1, so every goal-reaching return is 1 lower than in Cliff-v0 (optimum -13). -21 is
    # the paper's -20 shifted by that 1: it accepts the same episodes (the goal in at most 21 steps,
    # no fall). Cap 200 (Gymnasium has none); every step can fall: worst return 200 x (-100).
    "CliffWalking-v1": TaskSpec("CliffWalking-v1", "synthenv/CliffWalking-v1", 200, -21.0, -20000.0,
                                48, 4),
    # Gymnasium's MuJoCo HalfCheetah-v5, stepped on the host (synthenv.tasks.half_cheetah); 3000 is the
    # paper's threshold (the task has none); worst return: a generous floor for a diverged agent.
    # Its info vector is the reward's two terms as Gymnasium's step info names them (forward velocity,
    # minus the control cost; they sum to the reward); x_velocity repeats reward_forward, so it is left out.
    "HalfCheetah-v5": TaskSpec("HalfCheetah-v5", "host/HalfCheetah-v5", 1000, 3000.0, -5000.0, 17, 0, 6, 1.0,
                               info_keys=("reward_forward", "reward_ctrl")),
}


def require_info_vector(spec: TaskSpec, what: str) -> None:
    """A one-line ``UsageError`` naming the tasks that have an info vector when ``spec`` has none
    (``what``: what needs it)."""
    if not spec.info_keys:
        having = ", ".join(t for t, s in TASKS.items() if s.info_keys) or "none"
        raise UsageError(f"{what} need a task with an info vector; {spec.id} has none (tasks with one: {having})")


def get_spec(task_id: str) -> TaskSpec:
    try:
        return TASKS[task_id]
    except KeyError:
        known = ", ".join(sorted(TASKS))
        raise UsageError(f"unknown env id {task_id!r}; known ids: {known}") from None
