"""The workflow's files stay as the snakemake-workflows convention asks: snakefmt-formatted, lint-clean."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILES = [str(ROOT / "workflow" / "Snakefile"), *map(str, sorted((ROOT / "rules").glob("*.smk")))]


def test_snakefmt_would_change_nothing():
    done = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *SNAKEFILES], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr + done.stdout


#: The one lint left on purpose: a per-rule conda environment would have to install this package from a
#: relative path, which breaks once Snakemake copies the environment file into .snakemake/conda, and naming
#: an existing environment makes Snakemake run `conda env export` for every job even without
#: --software-deployment-method conda (every run fails where conda is not installed).
ACCEPTED_LINT = "Specify a conda environment or container for each rule."


@pytest.mark.slow
def test_snakemake_lint_finds_nothing_but_the_per_rule_environments():
    import re

    done = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    output = done.stdout + done.stderr
    assert "Lints for snakefile" not in output, output  # nothing about the files themselves
    found = set(re.findall(r"^    \* (.+?):?$", output, re.M))
    assert found <= {ACCEPTED_LINT}, found
