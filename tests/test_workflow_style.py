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


@pytest.mark.slow
def test_snakemake_lint_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Congratulations, your workflow is in a good condition!" in done.stdout + done.stderr
