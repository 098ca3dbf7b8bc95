"""The threat registry: buildable from one import, parameters checked by their declarations, the
`attack` flags generated from it, and a threat registered by a user running through a real batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from cli.main import cli
from robustbench_bilateral.attacks.vision import COMMON, VisionAttack
from robustbench_bilateral.engine import Param, Threat
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.errors import FieldError, InputError
from robustbench_bilateral.results import ResultStore
from robustbench_bilateral.threats import THREATS, adversarial_threats, build_threat, register_threat

SHARED = ("eps", "space", "labels", "schedule", "batch_size")


class BrightnessShift(Threat):
    """Every pixel shifted by ``delta``, clamped to [0, 1]."""

    name = "test-brightness"
    family = ThreatFamily.CORRUPTION
    summary = "Every pixel shifted by delta, clamped to [0, 1]."
    parameters = (Param("delta", float, 0.1, "shift in pixel units", minimum=-1.0, maximum=1.0),)

    def apply(self, images, labels, model, rng):
        return (images + self.params["delta"]).clamp(0, 1)


class SignSteps(VisionAttack):
    """``rounds`` L-inf gradient-sign steps of ``eps / rounds``, each projected back into the ball."""

    name = "test-sign-steps"
    summary = "Repeated gradient-sign steps of eps / rounds."
    iteration_param = "rounds"
    parameters = (*COMMON, Param("rounds", int, 4, "sign steps", minimum=1))

    def make(self, model, scale, seed):
        eps, rounds = self.params["eps"] * scale, self.params["rounds"]

        def attack(images, labels):
            adversarial = images.clone()
            for _ in range(rounds):
                adversarial.requires_grad_(True)
                (gradient,) = torch.autograd.grad(F.cross_entropy(model(adversarial), labels), adversarial)
                step = adversarial.detach() + eps / rounds * gradient.sign()
                adversarial = (images + (step - images).clamp(-eps, eps)).clamp(0, 1)
            return adversarial.detach()

        return attack


@pytest.fixture
def registered():
    """Register the given throwaway threat classes for one test, then remove them."""
    added = []

    def register(*classes):
        for cls in classes:
            added.append(register_threat(cls))

    yield register
    for cls in added:
        THREATS.unregister(cls.name)


def flat(text: str) -> str:
    """``text`` with every run of whitespace as one space (help lines wrap anywhere)."""
    return " ".join(text.split())


def test_importing_the_registry_alone_builds_threats_without_loading_torchattacks():
    code = ("import sys\n"
            "from robustbench_bilateral.threats import build_threat\n"
            "threat = build_threat('pgd', eps=4/255)\n"
            "assert 'torchattacks' not in sys.modules, 'torchattacks was imported'\n"
            "print(threat.name, threat.params['eps'], threat.params['steps'])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pgd", repr(4 / 255), "20"]


@pytest.mark.parametrize(("name", "values", "problem"), [
    ("fgsm", {"eps": 0.1, "steps": 3}, "threat 'fgsm' does not take 'steps': its parameters are eps, space, labels, schedule"),
    ("pgd", {"eps": 0.1, "steps": 2.5}, "got 2.5: give a whole number >= 1"),
    ("pgd", {"eps": 0.1, "steps": "5"}, "got '5': give a whole number >= 1"),
    ("pgd", {"eps": 0.1, "steps": 0}, "0 is out of range: give a whole number >= 1"),
])
def test_a_bad_parameter_is_a_field_error_naming_it_and_the_fix(name, values, problem):
    with pytest.raises(FieldError) as error:
        build_threat(name, **values)
    assert error.value.field == "steps" and error.value.problem == problem
    assert str(error.value) == f"steps: {problem}" and "\n" not in str(error.value)


def test_declarations_convert_fractions_fill_defaults_and_check_choices():
    threat = build_threat("pgd", eps="4/255", step_size=1, batch_size=8)
    assert threat.params == {"eps": 4 / 255, "norm": "Linf", "space": "pixel", "labels": "true", "steps": 20,
                             "step_size": 1.0, "random_start": True, "schedule": "early-exit", "batch_size": 8}
    assert "batch_size" not in build_threat("fgsm", eps=0.1).params
    with pytest.raises(FieldError, match="unknown value 'pix': choose one of pixel, normalized") as error:
        build_threat("fgsm", eps=0.1, space="pix")
    assert error.value.field == "space"
    with pytest.raises(FieldError, match="threat 'pgd' needs eps") as error:
        build_threat("pgd")
    assert error.value.field == "eps"
    with pytest.raises(FieldError, match="salt_pepper noise strength must be between 0 and 1") as error:
        build_threat("noise", kind="salt_pepper", strength=1.5)
    assert error.value.field == "strength"
    with pytest.raises(InputError, match="unknown threat 'pgdd': choose one of clean, fgsm, pgd"):
        build_threat("pgdd", eps=0.1)


def test_registering_checks_the_class(registered):
    with pytest.raises(TypeError, match="tuple of Param"):
        register_threat(type("Loose", (BrightnessShift,), {"name": "test-loose", "parameters": ({"delta": 0.1},)}))
    with pytest.raises(TypeError, match="subclass robustbench_bilateral.attacks.vision.VisionAttack"):
        register_threat(type("Bare", (Threat,), {"name": "test-bare", "family": ThreatFamily.ADVERSARIAL}))
    with pytest.raises(TypeError, match="norm"):
        register_threat(type("NoNorm", (SignSteps,), {"name": "test-no-norm", "norm": "L1"}))
    with pytest.raises(TypeError, match="iteration_param"):
        register_threat(type("NoRounds", (SignSteps,), {"name": "test-no-rounds", "iteration_param": "nb_iter"}))
    registered(BrightnessShift)
    with pytest.raises(ValueError, match="taken"):
        register_threat(type("Other", (BrightnessShift,), {}))
    assert not {"test-loose", "test-bare", "test-no-norm", "test-no-rounds"} & set(THREATS)


def test_attack_help_has_one_flag_per_registered_attack_with_its_defaults(registered):
    registered(SignSteps)
    result = CliRunner().invoke(cli, ["attack", "--help"], terminal_width=120)
    assert result.exit_code == 0, result.output
    flags = [line.split()[0] for line in result.output.splitlines() if line.startswith("  --")]
    attacks = [cls.name for cls in adversarial_threats()]
    assert attacks[-1] == "test-sign-steps" and "autoattack-torchattacks" in attacks and "autoattack" in attacks
    assert [flag for flag in flags if flag[2:] in THREATS] == [f"--{name}" for name in attacks]
    assert len(set(flags)) == len(flags)
    text = flat(result.output)
    for cls in adversarial_threats():
        settings = ", ".join(f"{param.name}={param.default}" + (" (--steps)" if param.name == cls.iteration_param else "")
                             for param in cls.parameters if param.name not in SHARED)
        assert f"--{cls.name} {flat(cls.summary)} [{cls.norm}" + (f"; {settings}]" if settings else "]") in text
    assert "[Linf; rounds=4 (--steps)]" in text and "[L2; steps=20 (--steps), step_size=None, random_start=True]" in text


def test_a_registered_attack_runs_from_its_generated_flag(registered, smoke_checkpoints, tmp_path):
    registered(SignSteps)
    path = str(smoke_checkpoints["softmax"])
    result = CliRunner().invoke(cli, ["--out", str(tmp_path), "attack", "--test-sign-steps", "--eps", "0,8/255",
                                      "--steps", "2", "--n-examples", "32", "--batch-size", "16", path],
                                terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "test-sign-steps: robust accuracy" in result.output
    with ResultStore.for_run(tmp_path, "main") as store:
        rows = {(row.threat, row.params.get("eps")): row for row in store.rows() if row.metric == "accuracy"}
    assert set(rows) == {("clean", None), ("test-sign-steps", 0.0), ("test-sign-steps", 8 / 255)}
    assert rows[("test-sign-steps", 8 / 255)].params == {"eps": 8 / 255, "norm": "Linf", "space": "pixel",
                                                         "labels": "true", "rounds": 2}
    assert rows[("test-sign-steps", 0.0)].n_correct == rows[("clean", None)].n_correct
    assert rows[("test-sign-steps", 8 / 255)].n_correct < rows[("clean", None)].n_correct


def test_a_registered_threat_runs_in_a_batch_spec_with_a_list_of_values(registered, smoke_checkpoints, tmp_path):
    registered(BrightnessShift)
    spec = tmp_path / "brightness.toml"
    spec.write_text(f'run = "grid"\nn_examples = 48\ncheckpoints = ["{smoke_checkpoints["softmax"]}"]\n'
                    '[[threats]]\nname = "clean"\n'
                    '[[threats]]\nname = "test-brightness"\ndelta = [0.4, "3/4"]\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--out", str(tmp_path / "out"), "batch", str(spec)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert Path(tmp_path / "out" / "grid" / "results.sqlite").is_file()
    with ResultStore.for_run(tmp_path / "out", "grid") as store:
        rows = [row for row in store.rows() if row.metric == "accuracy"]
        predictions = {row.cell_key: store.outcomes(row.cell_key)["predictions"] for row in rows}
    clean = next(row for row in rows if row.threat == "clean")
    shifted = sorted((row for row in rows if row.threat == "test-brightness"), key=lambda row: row.params["delta"])
    assert [row.params for row in shifted] == [{"delta": 0.4}, {"delta": 0.75}]
    assert all(row.threat_family is ThreatFamily.CORRUPTION and row.n == clean.n == 48 for row in shifted)
    for row in shifted:
        assert (predictions[row.cell_key] != predictions[clean.cell_key]).any()
    assert shifted[1].n_correct < clean.n_correct


def test_unregistered_threats_are_gone_from_the_flags_and_specs(smoke_checkpoints, tmp_path):
    assert "test-brightness" not in THREATS and "test-sign-steps" not in THREATS
    result = CliRunner().invoke(cli, ["attack", "--help"], terminal_width=120)
    assert "--test-sign-steps" not in result.output
    spec = tmp_path / "gone.toml"
    spec.write_text(f'checkpoints = ["{smoke_checkpoints["softmax"]}"]\n[[threats]]\nname = "test-brightness"\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["--out", str(tmp_path / "out"), "batch", str(spec)], terminal_width=200)
    assert result.exit_code == 2 and "unknown threat 'test-brightness'" in result.output


PLUGIN = '''
from robustbench_bilateral.engine import Param, Threat
from robustbench_bilateral.enums import ThreatFamily
from robustbench_bilateral.threats import register_threat


@register_threat
class Dim(Threat):
    name = "test-dim"
    family = ThreatFamily.NOISE
    summary = "Every pixel times a factor."
    parameters = (Param("factor", float, 0.5, "pixel factor", minimum=0.0, maximum=1.0),)

    def apply(self, images, labels, model, rng):
        return images * self.params["factor"]
'''


def test_a_plugin_file_registers_a_threat_for_the_installed_command(smoke_checkpoints, tmp_path):
    plugin = tmp_path / "dim_plugin.py"
    plugin.write_text(PLUGIN, encoding="utf-8")
    spec = tmp_path / "dim.toml"
    spec.write_text(f'run = "dim"\nn_examples = 32\ncheckpoints = ["{smoke_checkpoints["softmax"]}"]\n'
                    '[[threats]]\nname = "clean"\n[[threats]]\nname = "test-dim"\nfactor = [1, 0.25]\n', encoding="utf-8")
    command = [str(Path(sys.executable).parent / "bilat-eval"), "--out", str(tmp_path / "out")]
    missing = subprocess.run([*command, "batch", str(spec)], capture_output=True, text=True)
    assert missing.returncode == 2 and "unknown threat 'test-dim'" in missing.stderr
    done = subprocess.run([*command, "--plugin", str(plugin), "batch", str(spec)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with ResultStore.for_run(tmp_path / "out", "dim") as store:
        accuracy = {(row.threat, row.params.get("factor")): row.n_correct for row in store.rows() if row.metric == "accuracy"}
    assert accuracy[("test-dim", 1.0)] == accuracy[("clean", None)] != accuracy[("test-dim", 0.25)]
    broken = subprocess.run([*command, "--plugin", str(tmp_path / "absent.py"), "list", "attacks"], capture_output=True, text=True)
    assert broken.returncode == 2 and broken.stderr.count("\n") == 1 and "--plugin" in broken.stderr
