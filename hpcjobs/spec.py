"""The sweep file read into a Spec: each key checked against schema.py, the sections checked against each
other, and the Spec expanded into runs.

Pure functions on plain data; the only I/O is reading the TOML text in `load_spec`.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import layout
from .plan import backend_runs
from .schema import (
    BACKENDS,
    DEFAULT_MAX_RUNS,
    NAME_RE,
    REQUIRED,
    SCHEMA,
    SWEEPABLE,
    TOP_LEVEL,
    int_at_least,
    is_int,
)
from .settings import Run, Settings, SlurmSettings, TrainSettings
from .space import Dist, Search, SpaceError, check_draws, draw, parse_search, parse_space
from .vocab import DATASETS, InputError, did_you_mean

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class SpecError(InputError, ValueError):
    """A sweep file that cannot be used; the message is one line for the user."""


@dataclass(frozen=True)
class Spec:
    name: str
    backend: str
    settings: Settings  # data/model/train with defaults filled in
    slurm: SlurmSettings
    axes: dict[str, list[Any]]  # dotted key -> choices, in file order
    seeds: list[int]
    max_runs: int
    search: Search = field(default_factory=Search)
    space: dict[str, Dist] = field(default_factory=dict)
    draws: list[dict[str, Any]] = field(default_factory=list)  # from [space], crossed with the grid axes

    @property
    def run_count(self) -> int:
        return (
            math.prod(len(v) for v in self.axes.values())
            * max(1, self.search.configurations)
            * len(self.seeds)
        )


def _fail(where: str, key: str, given: Any, expected: str, hint: str = "") -> SpecError:
    return SpecError(
        f"{where}: {key} = {json.dumps(given, default=str)} is invalid: expected {expected}{hint}"
    )


def _typo(where: str, key: str, valid: Iterable[str], typed: str = "") -> SpecError:
    """`typed`: the key as the options spell it, where `key` names it in its table (sweep."model.hiden")."""
    options = list(valid)
    hint = did_you_mean(typed or key, options)
    return SpecError(f"{where}: unknown key '{key}'{hint}: expected one of {', '.join(options)}")


def _hint(key: str, given: Any, choices: Any = None) -> str:
    """What was probably meant: the dataset a typo is close to; [[64, 32]] for a flat list of layers."""
    if key.endswith("source") and isinstance(given, str):
        return did_you_mean(given, DATASETS)
    if key.endswith('"model.hidden"') and isinstance(choices, list) and all(is_int(c) for c in choices):
        return (
            f": each choice is a list of layers, so {json.dumps(choices)} is written {json.dumps([choices])}"
            f" (one architecture) or {json.dumps([[c] for c in choices])} (one layer each)"
        )
    return ""


def parse_spec(doc: dict[str, Any], where: str = "sweep file", base: Path | None = None) -> Spec:
    """Validate a parsed TOML document; `base` resolves a relative data path (the sweep file's folder)."""
    for key in doc:
        if key not in TOP_LEVEL:
            raise _typo(where, key, TOP_LEVEL)
    name = doc.get("name")
    if name is None:
        raise SpecError(f"{where}: 'name' is missing: expected a name of 1-64 characters from [A-Za-z0-9._-]")
    if not isinstance(name, str) or not NAME_RE.match(name) or name in (".", ".."):
        raise _fail(where, "name", name, "1-64 characters from [A-Za-z0-9._-]")
    backend = doc.get("backend", "tensorflow")
    if backend not in BACKENDS:
        raise _fail(where, "backend", backend, f"one of {', '.join(BACKENDS)}")
    max_runs = doc.get("max_runs", DEFAULT_MAX_RUNS)
    if not int_at_least(1)(max_runs):
        raise _fail(where, "max_runs", max_runs, "an integer ≥ 1")

    tables = {section: _parse_table(doc, section, where) for section in SCHEMA}
    slurm = SlurmSettings.from_dict(tables.pop("slurm"))
    axes, seeds = _parse_sweep(doc.get("sweep", {}), where)
    if base is not None:
        tables["data"]["source"] = _resolve(tables["data"]["source"], base)
        if "data.source" in axes:
            axes["data.source"] = [_resolve(v, base) for v in axes["data.source"]]
    settings = Settings.from_dict(tables)
    held_out = max(axes.get("data.test_fraction", [settings.data.test_fraction])) + max(
        axes.get("data.validation_fraction", [settings.data.validation_fraction])
    )
    if held_out >= 0.9:
        raise _fail(
            where,
            "data.test_fraction + data.validation_fraction",
            round(held_out, 6),
            "less than 0.9 so that something is left to train on",
        )
    for steps in axes.get("train.steps_per_execution", [settings.train.steps_per_execution]):
        if not backend_runs(backend, steps):
            raise _fail(
                where,
                "train.steps_per_execution",
                steps,
                f'"auto" or 1 with backend = "{backend}" (Keras runs it one step per call)',
            )
    search, space = _parse_search(doc, settings.train, axes, where)
    spec = Spec(name, backend, settings, slurm, axes, seeds, max_runs, search, space)
    if spec.run_count > max_runs:
        raise SpecError(
            f"{where}: the sweep expands to {spec.run_count:,} runs: expected at most "
            f"{max_runs:,} (raise the top-level max_runs if you mean it)"
        )
    if not space:
        return spec
    try:
        return dataclasses.replace(spec, draws=draw(space, search.configurations, search.seed, _label))
    except SpaceError as exc:
        raise SpecError(f"{where}: {exc}") from None


def _parse_search(
    doc: dict[str, Any], train: TrainSettings, axes: dict[str, list[Any]], where: str
) -> tuple[Search, dict[str, Dist]]:
    """[search] and [space], checked against each other and the grid axes."""
    patience = max(axes.get("train.early_stopping_patience", [train.early_stopping_patience]))
    try:
        search = parse_search(doc.get("search", {}), train.epochs)
        space = parse_space(doc.get("space", {}), SWEEPABLE)
        check_draws(search, space, list(axes), patience > 0)
        return search, space
    except SpaceError as exc:
        raise SpecError(f"{where}: {exc}") from None


def _resolve(source: str, base: Path) -> str:
    """A data file path relative to the sweep file's folder; built-in dataset names stay as they are."""
    return source if source in DATASETS else str((base / source).resolve())


def data_sources(spec: Spec) -> list[str]:
    return list(spec.axes.get("data.source", [spec.settings.data.source]))


def _parse_table(doc: dict[str, Any], section: str, where: str) -> dict[str, Any]:
    table = doc.get(section, {})
    schema = SCHEMA[section]
    if not isinstance(table, dict):
        raise _fail(where, section, table, f"a table [{section}]")
    for key in table:
        if key not in schema:
            raise _typo(where, f"{section}.{key}", (f"{section}.{k}" for k in schema))
    out: dict[str, Any] = {}
    for key, setting in schema.items():
        if key not in table:
            if setting.default is REQUIRED:
                raise SpecError(f"{where}: '{section}.{key}' is missing: expected {setting.kind}")
            out[key] = setting.default
            continue
        value = table[key]
        if not setting.check(value):
            raise _fail(where, f"{section}.{key}", value, setting.kind, _hint(f"{section}.{key}", value))
        out[key] = float(value) if isinstance(setting.default, float) else value
    return out


def _parse_sweep(table: Any, where: str) -> tuple[dict[str, list[Any]], list[int]]:
    if not isinstance(table, dict):
        raise _fail(where, "sweep", table, "a table [sweep] of dotted keys to lists of choices")
    axes: dict[str, list[Any]] = {}
    seeds = [0]
    for key, choices in table.items():
        if key == "seeds":
            # NumPy and the frameworks take 32-bit seeds: a larger one would fail on every node.
            if not (
                isinstance(choices, list)
                and choices
                and all(int_at_least(0)(s) and s < 2**32 for s in choices)
            ):
                raise _fail(where, "sweep.seeds", choices, "a non-empty list of integers 0 ≤ seed < 2**32")
            if len(set(choices)) != len(choices):
                raise _fail(where, "sweep.seeds", choices, "distinct seeds")
            seeds = list(choices)
            continue
        if key not in SWEEPABLE:
            raise _typo(where, f'sweep."{key}"', ["seeds", *SWEEPABLE], typed=key)
        if not isinstance(choices, list) or not choices:
            raise _fail(where, f'sweep."{key}"', choices, "a non-empty list of choices")
        setting = SWEEPABLE[key]
        for choice in choices:
            if not setting.check(choice):
                hint = _hint(f'sweep."{key}"', choice, choices)
                raise _fail(where, f'sweep."{key}"', choice, f"each choice {setting.kind}", hint)
        values = [float(c) if isinstance(setting.default, float) else c for c in choices]
        if len({json.dumps(v) for v in values}) != len(values):
            raise _fail(where, f'sweep."{key}"', choices, "distinct choices")
        axes[key] = values
    return axes, seeds


def load_spec(path: Path) -> Spec:
    """Read and validate a sweep file."""
    try:
        text = layout.read_text(path)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such sweep file: expected a TOML file path") from None
    except layout.FileProblem as exc:  # a device or FIFO would be read without end
        raise SpecError(f"{path}: cannot read the sweep file: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(
            f"{path}: cannot read the sweep file ({exc}): expected a readable TOML file"
        ) from None
    if text.startswith("\ufeff"):  # tomllib reads it as a stray character: "invalid statement"
        raise SpecError(f"{path}: starts with a UTF-8 byte-order mark: save it without one")
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    except RecursionError:
        raise SpecError(f"{path}: arrays or tables nested too deeply: expected a sweep file") from None
    return parse_spec(doc, where=str(path), base=path.parent)


def _label(value: Any) -> str:
    """A value as it reads in a run id: [64, 32] -> 64x32, 0.001 -> 0.001."""
    if isinstance(value, list):
        return "x".join(_label(v) for v in value)
    if isinstance(value, float):
        return repr(value)
    return re.sub(r"[^A-Za-z0-9.+-]", "-", str(value))


def expand(spec: Spec) -> list[Run]:
    """Every combination of the sweep axes (file order, last axis fastest), each with every seed; with a
    [space], every draw crossed with every combination (draws outermost)."""
    runs = []
    grid = [list(zip(spec.axes, combo, strict=True)) for combo in itertools.product(*spec.axes.values())]
    for combo in [[*g, *d.items()] for d in spec.draws for g in grid] if spec.draws else grid:
        settings = spec.settings
        parts = []
        for key, value in combo:
            settings = settings.with_value(key, value)
            parts.append(f"{key.split('.')[1]}-{_label(value)}")
        config_id = "__".join(parts) or "base"
        for seed in spec.seeds:
            runs.append(Run(f"{config_id}__seed-{seed}", config_id, seed, settings))
    if len({r.run_id for r in runs}) != len(runs):
        raise SpecError(
            f"sweep '{spec.name}': two choices give the same run id once reduced to "
            f"[A-Za-z0-9.+-]: expected choices that differ in those characters"
        )
    return runs
