"""Rich progress output for SE learning and evaluation summaries."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class GenerationProgress:
    """One line per generation (fitness, unperturbed score, real steps, seconds, ETA) and a bar."""

    def __init__(self, config):
        self.config = config
        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TextColumn("ETA {task.fields[eta]}"),
                                 console=self.console, transient=True)
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        c = self.config
        if c.kind == "rn":
            agents = f"inner agents {', '.join(c.inner_agents)}, {c.max_episodes} episodes, objective {c.objective}"
            what = f"an RN ({c.rn.label})"
        else:
            agents = (f"DDQN preset {c.preset}" if c.inner_agents == ("ddqn",) else
                      f"inner agents {', '.join(c.inner_agents)} "
                      f"({'cycled' if c.inner_mix == 'cycle' else 'together'})")
            if c.init_se is not None:
                agents += f", starting from {c.init_se}"
            what = "a synthetic bandit" if getattr(c, "proxy_kind", "se") == "bandit" else "an SE"
        self.console.print(f"learning {what} for [bold]{c.env}[/]: {c.es.strategy}, population {c.es.population}, "
                           f"{agents}{' (varied HPs)' if c.vary_hparams else ''}, "
                           f"up to {c.generations} generations")
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def _inner(self, d: dict) -> str:
        if self.config.inner_mix == "cycle":
            return f" {d['inner_agent']:<12}"
        return " " + " ".join(f"{name.split(':')[0]} {x:.0f}" for name, x in d["unperturbed_by_agent"].items())

    @staticmethod
    def _worst(d: dict) -> str:
        """The algorithm whose confirmation decided, where several confirmed."""
        by_agent = d.get("confirmed_by_agent") or {}
        return f" ({min(by_agent, key=by_agent.get).split(':')[0]})" if len(by_agent) > 1 else ""

    def event(self, kind: str, d: dict) -> None:
        if kind == "compiled":
            self.console.print(f"compiled the generation step in {d['compile_seconds']:.1f} s")
            self.task = self.progress.add_task("generations", total=self.config.generations,
                                               completed=d["generations_done"], eta="?")
        elif kind == "generation":
            done, total = d["generations_done"], d["generations"]
            per_gen = d["total_wall_seconds"] / max(1, done)
            eta = f"≤{per_gen * (total - done):.0f}s"
            if d.get("restarted"):
                attempt = d["attempt"]
                self.console.print(f"restart {attempt} at generation {d['generation']}: attempt {attempt - 1} "
                                   "did not solve; the ES starts again from a fresh random proxy (the best one "
                                   "so far is kept)")
            self.console.print(
                f"gen {d['generation']:3d}"
                + (self._inner(d) if len(self.config.inner_agents) > 1 else "")
                + f"  fitness mean {d['fitness_mean']:8.2f} max {d['fitness_max']:8.2f}  "
                f"unperturbed {d['score_unperturbed']:8.2f}  real steps {d['real_env_steps']:>10,d}  "
                f"{d['wall_seconds']:5.1f} s/gen  {eta}"
                + (f"  confirmed {d['score_confirmed']:8.2f}{self._worst(d)}" if d.get("score_confirmed") is not None
                   else "")
                + ("  [green]solved[/]" if d["solved"] else ""))
            self.progress.update(self.task, completed=done, eta=eta)
        elif kind == "done":
            state = "[green]solved[/]" if d["solved"] else ("done" if self.config.kind == "rn" else "not solved")
            self.console.print(f"{state} after {d['generations_done']} generations, best score "
                               f"{d['best_score']:.2f} (generation {d['best_generation']}), "
                               f"{d['wall_seconds'] + d['compile_seconds']:.0f} s; "
                               f"{self.config.kind.upper()} in {d['out']}/{self.config.proxy_file}")


def print_evaluation(r: dict) -> None:
    n = len(r["train_steps"])
    table = Table(title=f"{n} {r['agent']} agents "
                        f"trained on {r['proxy'] or r['env'] + ' (real)'}, tested on {r['env']}")
    reached = [x for x in r["steps_to_target"] if x is not None]
    for col in ("mean return", "solved fraction", "train steps (mean)", "train episodes (mean)",
                f"steps to {r['target']:g} (mean, reached)", "diverged", "seconds"):
        table.add_column(col, justify="right")
    to_target = f"{sum(reached) / len(reached):,.0f} ({len(reached)}/{n})" if reached else f"- (0/{n})"
    table.add_row(f"{r['mean_return']:.2f}", f"{r['solved_fraction']:.2f}", f"{sum(r['train_steps']) / n:,.0f}",
                  f"{sum(r['train_episodes']) / n:,.1f}", to_target, str(r["diverged"]), f"{r['wall_seconds']:.1f}")
    Console().print(table)


class SetProgress:
    """Progress of an SE set: one line per SE started, skipped or finished, a compact line per generation."""

    def __init__(self):
        self.console = Console(stderr=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def event(self, kind: str, d: dict) -> None:
        tag = f"[SE {d['index'] + 1}/{d['count']}]"
        if kind == "skip":
            self.console.print(f"{tag} finished earlier ({'solved' if d['solved'] else 'not solved'}, "
                               f"{d['generations_done']} generations), skipped")
        elif kind == "start":
            self.console.print(f"{tag} {'resuming' if d['resume'] else 'starting'}")
        elif kind == "generation":
            self.console.print(f"{tag} gen {d['generation']:3d}  unperturbed {d['score_unperturbed']:8.2f}  "
                               f"{d['wall_seconds']:5.1f} s" + ("  [green]solved[/]" if d["solved"] else ""))
        elif kind == "done":
            self.console.print(f"{tag} {'[green]solved[/]' if d['solved'] else 'not solved'} after "
                               f"{d['generations_done']} generations, best {d['best_score']:.2f}")


class JobProgress:
    """A bar over the jobs of a study and one line per finished job."""

    def __init__(self, title: str):
        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=self.console, transient=True)
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def event(self, kind: str, d: dict) -> None:
        if kind == "start":
            self.task = self.progress.add_task("jobs", total=d["jobs"])
        elif kind == "job":
            self.console.print(f"{d['setting']:<24} {d['agent']:<14} mean return {d['mean_return']:8.2f}  "
                               f"steps {d['train_steps_mean']:>9,.0f} ± {d['train_steps_std']:>8,.0f}  "
                               f"solved {d['solved_fraction']:.2f}  {d['wall_seconds']:.0f} s")
            self.progress.update(self.task, completed=d["done"])


def describe_params(p: dict) -> str:
    """A tune trial's parameters in one line (the paper's names: sigma, alpha, transform)."""
    a = "agent."
    return (f"sigma {p['es.sigma']:.3g}, alpha {p['es.lr']:.3g}, transform {p['es.score_transform']}, "
            f"{'mirrored' if p['es.mirrored'] else 'not mirrored'}; DDQN {p[a + 'activation']} "
            f"{p[a + 'layers']} x {p[a + 'hidden']}, batch {p[a + 'batch_size']}, lr {p[a + 'lr']:.3g}, "
            f"gamma {1 - p[a + 'one_minus_gamma']:.4g}, tau {p[a + 'tau']:.3g}, "
            f"{p[a + 'init_episodes']} random episodes")


class TuneProgress:
    """One line per trial started, run finished and trial finished; a status line per generation (in a
    log file, a line)."""

    def __init__(self):
        self.console = Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=self.console,
                                 transient=True)
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        self.task = self.progress.add_task("", total=None)
        return self

    def __exit__(self, *exc):
        return self.progress.__exit__(*exc)

    def event(self, kind: str, d: dict) -> None:
        if kind == "start":
            self.console.print(f"study {d['study']}: {d['finished']} of {d['trials']} trials finished")
        elif kind == "trial":
            self.console.print(f"[bold]trial {d['number']}[/]: {describe_params(d['params'])}")
        elif kind == "generation":
            line = f"trial {d['number']} run {d['run'] + 1} gen {d['generation']:3d}  unperturbed " \
                   f"{d['score_unperturbed']:7.2f}"
            if self.console.is_terminal:
                self.progress.update(self.task, description=line)
            else:  # a log file: every generation on its own line
                self.console.print(f"  {line}  {d['wall_seconds']:.1f} s")
        elif kind == "run":
            n = f"{d['generations']} generation{'s' if d['generations'] != 1 else ''}"
            result = f"solved in {n}" if d["solved"] else f"not solved in {n}"
            self.console.print(f"  run {d['run'] + 1}/{d['runs']} (seed {d['seed']}): {result}, cost {d['cost']}, "
                               f"{d['seconds']:.0f} s (compile {d['compile_seconds']:.0f} s)")
        elif kind == "pruned":
            self.console.print(f"  pruned in run {d['run'] + 1}: value at least {d['bound']} >= best {d['best']:g}")
        elif kind == "trial_done":
            value = "" if d["value"] is None else f" {d['value']:g}"
            best = "none yet" if d["best"] is None else f"{d['best']:g}"
            self.console.print(f"trial {d['number']} {d['state']}{value} in {d['seconds']:.0f} s; best {best}; "
                               f"{d['finished']} of {d['trials']} trials finished")


class HpoProgress:
    """One line per batch of trials trained on the SE, and per side of the HPO-proxy study."""

    def __init__(self):
        self.console = Console(stderr=True)

    def event(self, kind: str, d: dict) -> None:
        if kind == "batch":
            self.console.print(f"{d['done']:4d}/{d['trials']} trials trained on the SE, best score "
                               f"{d['best']:8.2f}, {d['seconds']:.0f} s")
        elif kind == "side":
            self.console.print(f"{d['side']:>4} side: {d['configs']} configs trained, mean return "
                               f"{d['mean_return']:8.2f}, {d['seconds']:.0f} s")


def print_hpo(r: dict) -> None:
    """The validated configs of ``synthenv hpo``: SE-side score, real-side return and steps."""
    fields = list(r["space"])
    table = Table(title=f"best {len(r['validated'])} of {r['trials']} {r['agent']} trials on {r['proxy']}, "
                        f"trained on {r['env']} (real)")
    for col in ("rank", "trial", *fields, "SE score", "real return", "real steps"):
        table.add_column(col, justify="right")
    for v in r["validated"]:
        table.add_row(str(v["rank"]), str(v["number"]) + (" (base)" if v["params"] == r["base_params"] else ""),
                      *(f"{v['params'][f]:.3g}" for f in fields), f"{v['se_return']:.2f}",
                      f"{v['real_return']:.2f}", f"{v['real_steps']:,.0f}")
    console = Console()
    console.print(table)
    console.print(f"SE side: {r['trials']} trials in {r['se_wall_seconds']:.0f} s (batches of {r['batch']}); "
                  f"real side: {len(r['validated'])} configs in {r['real_wall_seconds']:.0f} s")
