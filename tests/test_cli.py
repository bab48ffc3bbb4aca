import json

import pytest

import wrn_deploy
from tests.conftest import run_cli
from wrn_deploy.cli import cli

COMMANDS = sorted(cli.commands)


def test_help_and_version():
    assert "Wide Residual Networks" in run_cli("--help", process=True).stdout
    assert run_cli("--version").stdout.strip().endswith(wrn_deploy.__version__)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    out = run_cli(command, "--help", process=True).stdout  # each command starts in a real process
    assert "Usage:" in out and command in out


def test_models_lists_the_zoo_with_paper_numbers():
    rows = json.loads(run_cli("models", "--json", process=True).stdout)
    by_name = {r["recipe"]: r for r in rows}
    assert {"wrn-40-4-cifar10", "wrn-16-8-cifar10", "wrn-28-10-cifar10", "wrn-28-10-cifar100",
            "wrn-16-8-svhn", "wrn-50-2-imagenet"} <= set(by_name)
    assert round(by_name["wrn-28-10-cifar10"]["params"] / 1e6, 1) == 36.5
    assert round(by_name["wrn-50-2-imagenet"]["params"] / 1e6, 1) == 68.9
    assert by_name["wrn-28-10-cifar10"]["paper_error"] == 3.89
    table = run_cli("models").stdout
    assert "36.5M" in table and "MACs/img" in table


@pytest.mark.parametrize("args,fragment", [
    (["train", "--arch", "wrn-27-10"], "valid forms"),
    (["train", "--data", "mnist"], "synthetic"),
    (["train", "--epochs", "0"], "epochs"),
    (["nonsense"], "No such command"),
])
def test_bad_input_is_one_line_exit_2(args, fragment):
    proc = run_cli(*args, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in proc.stderr
