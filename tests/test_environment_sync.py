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


def test_every_third_party_import_is_declared():
    """Every distribution the package imports (at the top of a module or inside a function) is a declared
    dependency; one that only arrives through another package's requirements can vanish with its update."""
    import ast
    import sys
    from importlib.metadata import packages_distributions

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = set(normalise(project["dependencies"]))
    optional = {name for extra in project["optional-dependencies"].values() for name in normalise(extra)}
    providers = packages_distributions()
    providers.setdefault("dlib", ["dlib-bin"])  # dlib-bin's files are one extension module, _dlib_pybind11
    imported: dict[str, set[str]] = {}
    for path in (ROOT / "nice_core").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else []
            for name in names:
                top = name.split(".")[0]
                if top != "nice_core" and top not in sys.stdlib_module_names:
                    imported.setdefault(top, set()).add(path.relative_to(ROOT).as_posix())
    undeclared = {}
    for module, files in imported.items():
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
        if not dists & (declared | optional):
            undeclared[module] = sorted(files)[:3]
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"
