"""``bilat-eval attack``: robust accuracy of checkpoints under adversarial attacks, one table per attack."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import click
from rich.table import Table

from cli.evaluating import EvaluationOptions, comma_separated, evaluation_options, plan, run_with_progress
from cli.settings import Settings, pass_settings
from robustbench_bilateral.attacks.sanity import FLAG_MEANINGS, flag_stored_rows
from robustbench_bilateral.attacks.space import AttackSpace
from robustbench_bilateral.attacks.vision import LABEL_MODES
from robustbench_bilateral.batch import fraction_value
from robustbench_bilateral.engine import Clean, Threat, build_threat
from robustbench_bilateral.errors import InputError
from robustbench_bilateral.results import ResultRow

# Command-line switch -> registered threat name, in table order.
ATTACKS = {
    "fgsm": "fgsm",
    "pgd": "pgd",
    "pgdl2": "pgdl2",
    "spsa": "spsa",
    "autoattack": "autoattack-torchattacks",
    "square": "square",
}
L2_ATTACKS = frozenset({"pgdl2"})
PAPER_EPS = "1/255,2/255,3/255,4/255,5/255,6/255"
STEPS_SETTING = {"pgd": "steps", "pgdl2": "steps", "spsa": "nb_iter"}


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


def _threats(attacks: Sequence[str], eps: str, eps_l2: str | None, steps: int | None, space: str, labels: str,
             batch_size: int) -> dict[tuple[str, str], Threat]:
    """The threat of each (attack switch, eps as written), in table order."""
    if not attacks:
        raise InputError(f"no attack chosen: pass at least one of {', '.join('--' + name for name in ATTACKS)}")
    if "pgdl2" in attacks and eps_l2 is None:
        raise InputError("--pgdl2 needs its L2 radii: pass --eps-l2, e.g. --eps-l2 0.25,0.5")
    if steps is not None and steps < 1:
        raise InputError(f"--steps must be at least 1, got {steps}")
    radii = {"linf": parse_eps(eps), "l2": parse_eps(eps_l2) if eps_l2 is not None else []}
    threats = {}
    for attack in attacks:
        settings = {STEPS_SETTING[attack]: steps} if steps is not None and attack in STEPS_SETTING else {}
        for label, value in radii["l2" if attack in L2_ATTACKS else "linf"]:
            threats[(attack, label)] = build_threat(ATTACKS[attack], eps=value, space=space, labels=labels,
                                                    batch_size=batch_size, **settings)
    return threats


def _cell_text(row: ResultRow) -> str:
    """Accuracy in percent over its 95 % interval, e.g. ``81.2`` / ``[77.6, 84.4]``; ``!`` marks a flagged row."""
    mark = " !" if row.flags else ""
    return f"{100 * row.value:.1f}{mark}\n[{100 * row.ci_low:.1f}, {100 * row.ci_high:.1f}]"


def attack_tables(threats: dict[tuple[str, str], Threat], clean: Threat, checkpoints: Sequence[str],
                  accuracy: dict[tuple[str, int], ResultRow], title: str) -> list[tuple[Table, list[str]]]:
    """One table per attack (variants as rows; clean, then eps as columns) with its warning lines.

    ``accuracy[(checkpoint, id(threat))]`` is the stored accuracy row of that checkpoint and threat.
    """
    variants = [accuracy[(path, id(clean))].variant for path in checkpoints]
    names = [f"{variant} ({path})" if variants.count(variant) > 1 else variant for variant, path in zip(variants, checkpoints)]
    by_attack: dict[str, list[tuple[str, Threat]]] = defaultdict(list)
    for (attack, label), threat in threats.items():
        by_attack[attack].append((label, threat))
    tables = []
    for attack, columns in by_attack.items():
        table = Table(title=f"{ATTACKS[attack]}: {title}")
        table.add_column("variant")
        table.add_column("clean", justify="right")
        for label, _ in columns:
            table.add_column(f"eps {label}", justify="right")
        flagged: dict[tuple[str, str], list[str]] = defaultdict(list)
        for name, path in zip(names, checkpoints):
            cells = [accuracy[(path, id(threat))] for _, threat in columns]
            table.add_row(name, _cell_text(accuracy[(path, id(clean))]), *map(_cell_text, cells))
            for (label, _), row in zip(columns, cells):
                for flag in row.flags:
                    flagged[(name, flag)].append(label)
        warnings = [f"warning: {name}: {flag} at eps {', '.join(labels)} ({FLAG_MEANINGS.get(flag, flag)})"
                    for (name, flag), labels in flagged.items()]
        tables.append((table, warnings))
    return tables


@click.command("attack")
@click.option("--fgsm", is_flag=True, help="FGSM, one L-inf step.")
@click.option("--pgd", is_flag=True, help="PGD L-inf, 20 steps of 0.15 eps, random start.")
@click.option("--pgdl2", is_flag=True, help="PGD L2 at the --eps-l2 radii.")
@click.option("--spsa", is_flag=True, help="SPSA (gradient-free) L-inf, 40 iterations.")
@click.option("--autoattack", is_flag=True, help="torchattacks' AutoAttack re-implementation (not the reference code).")
@click.option("--square", is_flag=True, help="Square (score-based, gradient-free) L-inf, 5000 queries.")
@click.option("--eps", default=PAPER_EPS, show_default=True, help="L-inf radii, fractions or decimals, in pixel units of [0, 1] (normalised units with --space normalized).")
@click.option("--eps-l2", default=None, help="L2 radii for --pgdl2, e.g. 0.25,0.5.")
@click.option("--steps", type=int, default=None, help="Iterations of PGD / PGD-L2 / SPSA [default: 20 / 20 / 40].")
@click.option("--space", type=click.Choice([space.value for space in AttackSpace]), default="pixel", show_default=True,
              help="Attack in [0, 1] pixels (clamped) or, as the paper group did, in normalised inputs without clamping.")
@click.option("--labels", type=click.Choice(LABEL_MODES), default="true", show_default=True,
              help="Attack the ground truth or the model's clean prediction.")
@evaluation_options(default_n=500)
@pass_settings
def attack_command(settings: Settings, options: EvaluationOptions, eps: str, eps_l2: str | None, steps: int | None,
                   space: str, labels: str, **switches: bool) -> None:
    """Robust accuracy of each CHECKPOINT under the chosen attacks: one table per attack, variants by eps."""
    chosen = [attack for attack in ATTACKS if switches[attack]]
    threats = _threats(chosen, eps, eps_l2, steps, space, labels, options.batch_size)
    clean = Clean()
    cells = plan(settings, options, [clean, *threats.values()])
    rows = flag_stored_rows(settings.out, options.run, run_with_progress(settings, options, cells))
    stored = {row.cell_key: row for row in rows if row.metric == "accuracy"}
    accuracy = {(cell.checkpoint_path, id(cell.threat)): stored[cell.key] for cell in cells}
    title = f"robust accuracy % [95% CI], {space} space, labels={labels}, n={rows[0].n}, run {options.run}"
    for table, warnings in attack_tables(threats, clean, list(dict.fromkeys(options.checkpoints)), accuracy, title):
        settings.console.print(table)
        for line in warnings:
            settings.console.print(line, style="yellow", markup=False)
