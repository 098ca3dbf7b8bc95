"""``bilat-eval attack``: robust accuracy of image classifiers, or perplexity of language models, under
adversarial attacks, one table per attack.

For language checkpoints ``--fgsm``, ``--pgd`` and ``--pgdl2`` select the embedding attacks
(``fgsm-embedding``, ...: ``robustbench_bilateral.attacks.language``) and read ``--eps`` /
``--eps-l2`` as radii relative to the model's mean embedding norm. ``--autoattack`` runs the
reference AutoAttack, ``--autoattack-torchattacks`` torchattacks' re-implementation; the warnings
under the tables name the sanity flags the run's rows carry (``results.sanity``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import click

from cli.evaluating import EvaluationOptions, comma_separated, evaluation_options, load_settings, plan, run_with_progress
from cli.settings import Settings, pass_settings
from cli.tables import attack_tables
from robustbench_bilateral.attacks.language import EmbeddingAttack
from robustbench_bilateral.attacks.schedule import Schedule
from robustbench_bilateral.attacks.space import AttackSpace
from robustbench_bilateral.attacks.vision import LABEL_MODES, VisionAttack
from robustbench_bilateral.engine import Cell, Clean, Threat
from robustbench_bilateral.enums import Task
from robustbench_bilateral.errors import BilatError, FieldError, InputError
from robustbench_bilateral.numbers import fraction_value
from robustbench_bilateral.sources import Sources
from robustbench_bilateral.threats import adversarial_threats, embedding_attacks

PAPER_EPS = "1/255,2/255,3/255,4/255,5/255,6/255"
SHARED_FLAGS = {"eps": "--eps", "space": "--space", "labels": "--labels", "schedule": "--schedule", "batch_size": "--batch-size"}
"""Attack parameters that a shared option of the command sets, by that option (L2 attacks take
``eps`` from ``--eps-l2``)."""


def parse_eps(text: str) -> list[tuple[str, float]]:
    """``(as written, value)`` of each comma-separated eps: a decimal (``0.0157``) or fraction (``4/255``), >= 0.

    Repeated values are kept once, in the order first given.
    """
    return [(label, value) for value, label in comma_separated(text, eps_value).items()]


def eps_value(token: str) -> float:
    """One eps token: a decimal or fraction >= 0."""
    try:
        value = fraction_value(token)
        problem = "" if value >= 0 else "must be >= 0"
    except ValueError as error:
        problem = str(error)
    if problem:
        raise InputError(f"bad eps '{token}': {problem}: give decimals or fractions separated by commas, e.g. 1/255,4/255 or 0.0157")
    return value


def switch_key(name: str) -> str:
    """The keyword argument that the flag ``--NAME`` of the attack ``name`` arrives as."""
    return "attack_" + re.sub(r"\W", "_", name)


def flag_help(attack: type[VisionAttack]) -> str:
    """The help of an attack's flag: its summary, norm and the defaults of the parameters no shared
    option sets, the one ``--steps`` sets marked, e.g. ``... [Linf; steps=20 (--steps), step_size=None]``."""
    settings = [f"{param.name}={param.default}" + (" (--steps)" if param.name == attack.iteration_param else "")
                for param in attack.parameters if param.name not in SHARED_FLAGS]
    language = embedding_attacks().get(attack.name)
    on_text = f" On language models: {language.name}, eps relative." if language is not None else ""
    return f"{attack.summary} [{'; '.join([attack.norm, ', '.join(settings)]) if settings else attack.norm}]{on_text}"


class AttackCommand(click.Command):
    """A command whose options start with one flag ``--NAME`` per registered adversarial threat,
    read from the threat registry whenever the command parses its arguments or shows its help."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._flags: dict[tuple[type[VisionAttack], ...], list[click.Option]] = {}

    def attack_flags(self) -> list[click.Option]:
        """The flags of the attacks registered now (the same objects while the registry is unchanged)."""
        attacks = tuple(adversarial_threats())
        if attacks not in self._flags:
            self._flags[attacks] = [click.Option([f"--{attack.name}", switch_key(attack.name)], is_flag=True,
                                                 help=flag_help(attack)) for attack in attacks]
        return self._flags[attacks]

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        return [*self.attack_flags(), *super().get_params(ctx)]


Attack = type[VisionAttack] | type[EmbeddingAttack]


def is_language(options: EvaluationOptions) -> bool:
    """Whether the checkpoints are language models; a mix of language models and image classifiers
    is an ``InputError`` (a checkpoint that cannot be read is left to planning to report)."""
    sources = Sources(load_settings(options))
    tasks = set()
    for path in dict.fromkeys(options.checkpoints):
        try:
            tasks.add(sources.describe(path).task)
        except BilatError:
            continue
    if len(tasks) > 1:
        raise InputError("attack got image classifiers and language models: run it once for each kind")
    return tasks == {Task.LANGUAGE_MODELING}


def embedding_counterparts(attacks: Sequence[Attack]) -> list[type[EmbeddingAttack]]:
    """The embedding attack each chosen flag selects for language models; a flag without one is an ``InputError``."""
    counterparts = embedding_attacks()
    for attack in attacks:
        if attack.name not in counterparts:
            flags = ", ".join(f"--{name}" for name in counterparts)
            raise InputError(f"--{attack.name} does not apply to language models: use {flags} (embedding attacks)")
    return [counterparts[attack.name] for attack in attacks]


def _threats(attacks: Sequence[Attack], eps: str, eps_l2: str | None, steps: int | None, space: str, labels: str,
             schedule: str, batch_size: int) -> dict[tuple[str, str], Threat]:
    """The threat of each (attack name, eps as written), in table order.

    ``--eps`` feeds the attacks of norm ``Linf``, ``--eps-l2`` those of norm ``L2``, ``--steps``
    each attack's ``iteration_param``, ``--schedule`` and ``--batch-size`` the attacks that declare
    ``schedule`` / ``batch_size``.
    A bad value is reported under the option that set it.
    """
    if not attacks:
        names = ", ".join(f"--{attack.name}" for attack in adversarial_threats())
        raise InputError(f"no attack chosen: pass at least one of {names}")
    for attack in attacks:
        if attack.norm == "L2" and eps_l2 is None:
            raise InputError(f"--{attack.name} needs its L2 radii: pass --eps-l2, e.g. --eps-l2 0.25,0.5")
    radii = {"Linf": parse_eps(eps), "L2": parse_eps(eps_l2) if eps_l2 is not None else []}
    shared = {"space": space, "labels": labels, "schedule": schedule, "batch_size": batch_size}
    threats: dict[tuple[str, str], Threat] = {}
    for attack in attacks:
        declared = {param.name for param in attack.parameters}
        values = {name: value for name, value in shared.items() if name in declared}
        flags = {**SHARED_FLAGS, "eps": "--eps-l2" if attack.norm == "L2" else "--eps"}
        if steps is not None and attack.iteration_param is not None:
            values[attack.iteration_param] = steps
            flags[attack.iteration_param] = "--steps"
        for label, value in radii[attack.norm]:
            try:
                threats[(attack.name, label)] = attack(eps=value, **values)
            except FieldError as error:
                raise error.renamed(flags.get(error.field, error.field)) from error
    return threats


@click.command("attack", cls=AttackCommand)
@click.option("--eps", default=PAPER_EPS, show_default=True,
              help="L-inf radii, fractions or decimals, in pixel units of [0, 1] (normalised units with --space normalized); "
                   "a language checkpoint reads them relative to its RMS embedding coordinate "
                   "(mean embedding norm / sqrt(width)) and --fgsm/--pgd/--pgdl2 attack its token embeddings.")
@click.option("--eps-l2", default=None, help="Radii of the attacks of norm L2 (see `bilat-eval list attacks`), e.g. 0.25,0.5; "
                                              "a language checkpoint reads them relative to its mean embedding norm.")
@click.option("--steps", type=int, default=None,
              help="Iterations of each chosen attack that iterates (its parameter marked --steps) [default: its own].")
@click.option("--space", type=click.Choice([space.value for space in AttackSpace]), default="pixel", show_default=True,
              help="Attack in [0, 1] pixels (clamped) or, as the paper group did, in normalised inputs without clamping.")
@click.option("--labels", type=click.Choice(LABEL_MODES), default="true", show_default=True,
              help="Attack the ground truth or the model's clean prediction.")
@click.option("--schedule", type=click.Choice([schedule.value for schedule in Schedule]), default=Schedule.EARLY_EXIT.value,
              show_default=True,
              help="FGSM / PGD / PGD-L2: early-exit skips examples misclassified clean and stops PGD on an example at its "
                   "first misclassified iterate (AutoAttack's practice, no higher robust accuracy); full attacks every "
                   "example to the final iterate, as a bare torchattacks loop does.")
@evaluation_options(default_n=500, why_n="Default 500: an attack costs up to thousands of passes per example.")
@pass_settings
def attack_command(settings: Settings, options: EvaluationOptions, eps: str, eps_l2: str | None, steps: int | None,
                   space: str, labels: str, schedule: str, **switches: bool) -> None:
    """Robust accuracy of each CHECKPOINT under the chosen attacks: one table per attack, variants by eps.

    Language checkpoints get per-word perplexity under the same attacks on their token embeddings,
    with eps relative to the mean embedding norm (see --eps)."""
    chosen: list[Attack] = [attack for attack in adversarial_threats() if switches.get(switch_key(attack.name))]
    language = bool(chosen) and is_language(options)
    if language:
        chosen = list(embedding_counterparts(chosen))
    threats = _threats(chosen, eps, eps_l2, steps, space, labels, schedule, options.batch_size)
    clean = Clean()
    evaluation = plan(settings, options, [clean, *threats.values()])
    rows = run_with_progress(settings, evaluation)
    metric = "perplexity" if language else "accuracy"
    stored = {row.cell_key: row for row in rows if row.metric == metric}
    by_cell = {(cell.checkpoint_path, id(threat)): stored[cell.key]
               for cell, threat in planned_threats(evaluation.cells, [clean, *threats.values()])}
    if language:
        title = f"perplexity [95% CI] under embedding attacks, eps relative, {rows[0].n} words, run {options.run}"
    else:
        title = (f"robust accuracy [95% CI], {space} space, labels={labels}, schedule {schedule} (FGSM, PGD), n={rows[0].n}, "
                 f"run {options.run}")
    for table in attack_tables(threats, clean, list(dict.fromkeys(options.checkpoints)), by_cell, title):
        settings.console.print(table)


def planned_threats(cells: Sequence[Cell], threats: Sequence[Threat]) -> list[tuple[Cell, Threat]]:
    """Each planned cell with the command's threat it came from. Planning gives every checkpoint one
    cell per threat, in order, and may complete a threat with what its model adds (an AutoAttack's
    ``n_classes``), so a cell's threat is that threat or a completed copy of it."""
    by_checkpoint: dict[str, list[Cell]] = {}
    for cell in cells:
        by_checkpoint.setdefault(cell.checkpoint_path, []).append(cell)
    return [pair for own in by_checkpoint.values() for pair in zip(own, threats, strict=True)]
