"""environment.yml (conda, for clusters) must ask for exactly what pyproject.toml asks for."""

from pathlib import Path

import tomllib
import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def normalise(requirements):
    out = {}
    for text in requirements:
        req = Requirement(text)
        out[req.name.lower().replace("_", "-")] = str(req.specifier)
    return out


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict) and "pip" in item)
    assert "-e ." in pip, "environment.yml must install the package itself"
    assert normalise(r for r in pip if not r.startswith("-")) == normalise(project)


def test_no_torchvision_and_no_pytorch3d():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = set(normalise(project))
    assert not names & {"torchvision", "pytorch3d"}
