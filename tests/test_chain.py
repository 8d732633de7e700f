"""The chain's definition (nice_core/chain.py) is the one the workflow, refine and the CLI follow."""

import re
from pathlib import Path

import pytest

from nice_core.chain import CHAIN, INPUTS, WorkFiles, stage

ROOT = Path(__file__).resolve().parents[1]
FILE_NAMES = [name for name, value in vars(WorkFiles).items() if isinstance(value, property)]


def test_every_stage_reads_only_what_is_given_or_made_before_it():
    made = set(INPUTS)
    for step in CHAIN:
        assert set(step.reads) <= made, f"{step.name} reads {set(step.reads) - made} before any stage makes it"
        assert set(step.writes) <= {*FILE_NAMES, "refined"}, f"{step.name} writes an unnamed file"
        made |= set(step.writes)
    assert [s.name for s in CHAIN] == list(dict.fromkeys(s.name for s in CHAIN))  # no name twice
    assert stage("carrier").writes == ("proxy_crops", "checkpoints", "carrier")  # never into the store
    with pytest.raises(KeyError, match="no stage 'prior' in the chain"):
        stage("prior")


def test_every_stage_is_a_rule_and_a_command():
    from nice_core.cli import build_parser

    rules = set(re.findall(r"^rule (\w+):", "".join(p.read_text() for p in (ROOT / "rules").glob("*.smk")), re.M))
    commands = set(next(a for a in build_parser()._actions if a.dest == "command").choices)
    for step in CHAIN:
        assert step.name in rules, f"no rule {step.name} in rules/*.smk"
        assert step.command in commands, f"no nice-core {step.command}"


def test_work_file_names_are_written_only_in_the_chain():
    """The rules, refine, the CLI and tracking take every work file's name from WorkFiles."""
    files = WorkFiles(Path("w"))
    names = {getattr(files, name).name for name in FILE_NAMES}
    readers = [*(ROOT / "rules").glob("*.smk"), ROOT / "workflow" / "Snakefile"]
    readers += [ROOT / "nice_core" / p for p in ("refine.py", "cli.py", "face/track.py")]
    for path in readers:
        text = path.read_text()
        spelled = sorted(n for n in names if f'"{n}"' in text or f"'{n}'" in text)
        assert not spelled, f"{path.relative_to(ROOT)} spells {spelled}; use nice_core.chain.WorkFiles"


def test_work_files_are_paths_under_their_folder():
    files = WorkFiles("results/work/{video}")
    assert files.store == Path("results/work/{video}/face.h5")  # a Snakemake pattern stays a pattern
    assert {getattr(files, n).parent for n in FILE_NAMES} == {Path("results/work/{video}")}


def test_the_per_target_stages_read_only_the_target_and_write_only_its_files():
    """Probe and tracking depend on the target alone: the workflow runs them once per target, shared by every
    video of that target (FF++'s methods), in the target's folder; nothing else writes there."""
    from nice_core.chain import TARGET_FILES

    made = {"target"}
    for step in CHAIN:
        if step.per_target:
            assert set(step.reads) <= made, f"{step.name} is per target but reads {set(step.reads) - made}"
            assert set(step.writes) <= set(TARGET_FILES), f"{step.name} is per target but writes {step.writes}"
            made |= set(step.writes)
        else:
            assert not set(step.writes) & set(TARGET_FILES), f"{step.name} writes into the target's folder"
    assert {s.name for s in CHAIN if s.per_target} == {"extract", "track", "motion"}
    files = WorkFiles("results/work/v", target_root="results/work/_targets/t")
    assert {getattr(files, n).parent for n in TARGET_FILES} == {Path("results/work/_targets/t")}
    assert {getattr(files, n).parent for n in FILE_NAMES if n not in TARGET_FILES} == {Path("results/work/v")}
    text = "".join(p.read_text() for p in sorted((ROOT / "rules").glob("*.smk")) if p.name != "common.smk")
    rules = {block.split(":", 1)[0]: block for block in re.split(r"^rule ", text, flags=re.M)[1:]}
    for step in CHAIN:  # a per-target rule is keyed by {target}; the others reach its files through helpers
        assert ("{target}" in rules[step.name]) == step.per_target, step.name
    for name in TARGET_FILES:  # work("{video}") is a pattern of the video's own folder, where they are not
        assert f'work("{{video}}").{name}' not in text, f"a rule reads {name} from the video's folder"
