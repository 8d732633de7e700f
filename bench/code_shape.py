"""The code's shape, for issue 13's before/after: the longest functions and the imports between subpackages.

Usage: ``python bench/code_shape.py [ROOT] [--top 10]`` (ROOT: a checkout, default this one). Pure ``ast``;
imports inside functions count too (they are still a dependency).
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path


def functions(root: Path) -> list[tuple[int, str]]:
    """(lines, "path:name") of every function and method under ``root/nice_core``."""
    out = []
    for path in sorted((root / "nice_core").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append((node.end_lineno - node.lineno + 1, f"{path.relative_to(root)}:{node.name}"))
    return sorted(out, reverse=True)


def subpackage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "nice_core" else None


def import_edges(root: Path) -> dict[tuple[str, str], int]:
    """(from subpackage, to subpackage) -> number of import statements."""
    edges: dict[tuple[str, str], int] = defaultdict(int)
    for path in sorted((root / "nice_core").rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        source = subpackage(".".join(rel.parts))
        if source is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            for name in names:
                target = subpackage(name)
                if target and target != source:
                    edges[(source, target)] += 1
    return dict(edges)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args()
    funcs = functions(args.root)
    print(f"functions: {len(funcs)}; over 80 lines: {sum(n > 80 for n, _ in funcs)}")
    for lines, name in funcs[: args.top]:
        print(f"  {lines:4d}  {name}")
    edges = import_edges(args.root)
    print("imports between subpackages (from -> to: statements):")
    for (a, b), count in sorted(edges.items()):
        cycle = " (cycle)" if (b, a) in edges else ""
        print(f"  {a} -> {b}: {count}{cycle}")


if __name__ == "__main__":
    main()
