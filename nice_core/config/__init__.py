"""The workflow's configuration: one schema (``config.schema.yaml`` next to this file), validated once.

The schema is the one place a setting's type, default and meaning live. Three readers use it:

* the Snakefile validates ``config.yaml`` (and any ``--configfile``) with :func:`validate` before it builds
  the DAG, and turns each stage's section into that stage's command-line flags with :func:`stage_flags`;
* every ``nice-core`` command that takes ``--config FILE`` reads it with :func:`load` (the same checks);
* the library's settings dataclasses (``TrackConfig``, ``SwapConfig``, ...) take their defaults from
  :func:`default`, so a default changed here changes the CLI, the library and the workflow at once.

This module is pure Python (PyYAML and jsonschema): reading the workflow must not import torch, PyAV or h5py.
"""

from __future__ import annotations

import copy
import difflib
import shlex
from functools import lru_cache
from pathlib import Path
from typing import Any

from nice_core.errors import InputError

SCHEMA_PATH = Path(__file__).with_name("config.schema.yaml")


class ConfigError(InputError):
    """A configuration that does not match the schema; the message names the key path."""


@lru_cache(maxsize=1)
def schema() -> dict:
    """The parsed schema (read once; treat it as read-only). libyaml's parser where PyYAML has it: the pure
    Python one took 0.3 s of every job's start."""
    import yaml

    return yaml.load(SCHEMA_PATH.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _resolve(node: dict) -> dict:
    """``node`` with a local ``$ref`` (``#/$defs/NAME``) replaced by its target."""
    ref = node.get("$ref")
    if ref is None:
        return node
    target = schema()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}


def _node(path: str) -> dict:
    node = schema()
    for part in path.split("."):
        properties = _resolve(node).get("properties", {})
        if part not in properties:
            raise KeyError(f"no setting {path!r} in {SCHEMA_PATH.name}")
        node = properties[part]
    return _resolve(node)


def default(path: str) -> Any:
    """The default of the setting at dotted ``path`` (``"face.crop_size"``), a fresh copy.

    Raises:
        KeyError: the schema has no such setting, or it has no default.
    """
    node = _node(path)
    if "default" not in node:
        raise KeyError(f"setting {path!r} has no default in {SCHEMA_PATH.name}")
    return copy.deepcopy(node["default"])


def _fill_defaults(node: dict, value: Any) -> Any:
    """``value`` with every missing key that has a default filled in, recursively (records only)."""
    node = _resolve(node)
    properties = node.get("properties")
    if not isinstance(value, dict) or properties is None:
        return value
    out = dict(value)
    for key, child in properties.items():
        child = _resolve(child)
        if key not in out:
            if "default" in child:
                out[key] = copy.deepcopy(child["default"])
            elif "properties" in child:
                out[key] = {}
            else:
                continue
        elif isinstance(out[key], dict) and isinstance(child.get("default"), dict) and "properties" in child:
            out[key] = {**copy.deepcopy(child["default"]), **out[key]}  # a record's default: per-key defaults
        out[key] = _fill_defaults(child, out[key])
    return out


def _key_path(parts) -> str:
    return ".".join(str(p) for p in parts) or "(top level)"


def _error_line(error) -> str:
    """One line for a jsonschema error, named by its key path; unknown keys get a suggestion."""
    where = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(_resolve(error.schema).get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in known)
        if unknown:
            key = str(unknown[0])
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]}?" if close else f"; known: {', '.join(known)}"
            return f"{_key_path([*where, key])}: unknown key{hint}"
    return f"{_key_path(where)}: {error.message}"


def validate(config: dict | None, where: str = "config") -> dict:
    """``config`` checked against the schema, with every default filled in (a new dict).

    Args:
        config: a loaded ``config.yaml`` (Snakemake's merged ``config`` or a CLI ``--config`` file).
        where: what the config is, for the message (``"config.yaml"``, a file name).

    Raises:
        ConfigError: the first problem, as ``"<where>: <key.path>: <what is wrong>"``.
    """
    import jsonschema

    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ConfigError(f"{where}: must be a mapping of settings, got {type(config).__name__}")
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        chosen = errors[0]
        if chosen.context:  # anyOf: say what is wrong with the alternative that came closest
            fitting = [e for e in chosen.context if e.validator != "type"]  # of the branch of its type
            chosen = jsonschema.exceptions.best_match(fitting or chosen.context)
        raise ConfigError(f"{where}: {_error_line(chosen)}")
    return _fill_defaults(schema(), config)


def merge(base: dict, other: dict) -> dict:
    """``other`` laid over ``base``, mappings merged key by key (how Snakemake combines config files)."""
    out = dict(base)
    for key, value in other.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read(path: str | Path) -> dict:
    """A YAML config file as it is written (not validated; an empty file is ``{}``).

    Raises:
        ConfigError: unreadable or not YAML (one line).
    """
    import yaml

    from nice_core.errors import yaml_error_line

    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read config {path}: {yaml_error_line(err)}") from None
    return {} if data is None else data


def load(path: str | Path) -> dict:
    """Read a YAML config file, validate it and fill its defaults.

    Raises:
        ConfigError: unreadable, not YAML, or not matching the schema (one line).
    """
    return validate(read(path), where=str(path))


def _flag(key: str, value: Any) -> list[str]:
    flag = "--" + key.replace("_", "-")
    if value is None or value == []:
        return []
    if isinstance(value, bool):
        return [flag if value else "--no-" + key.replace("_", "-")]
    if isinstance(value, list):
        return [flag, *map(str, value)]
    return [flag, str(value)]


def stage_flags(config: dict, section: str) -> str:
    """The command-line flags that pass a validated section to its stage's command (shell-quoted).

    Each key becomes ``--key-name VALUE`` (booleans ``--key-name`` / ``--no-key-name``; ``null`` and empty
    lists are left out, so the command's default holds); a nested mapping (``carrier.fit``) becomes
    ``--set key=value`` per entry. Keys the schema marks ``x-cli: false`` are the workflow's own.
    """
    properties = _node(section).get("properties", {})
    values = config
    for part in section.split("."):  # a nested section: "detector.train"
        values = values.get(part, {})
    words: list[str] = []
    for key, value in values.items():
        if properties.get(key, {}).get("x-cli", True) is False:
            continue
        if isinstance(value, dict):
            words += [w for k, v in value.items() for w in ("--set", f"{k}={'null' if v is None else v}")]
        else:
            words += _flag(key, value)
    return " ".join(map(shlex.quote, words))
