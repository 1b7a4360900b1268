"""`[search]` and `[space]` of the sweep file: how configurations are chosen, and seeded draws from a space.

Pure and standard library only (status reads a search's plan on login nodes). spec.py owns the sweep file
and calls in here; errors are SpaceError, whose message spec.py prefixes with the file name.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .vocab import did_you_mean

METHODS = ("grid", "random", "halving")
DISTRIBUTIONS = ("log_uniform", "uniform", "int_uniform", "choice")
HIDDEN_SPACE = ("layers", "units")
SEARCH_KEYS = ("method", "configurations", "min_epochs", "eta", "seed")
# Settings a search may not draw: the data split (every configuration must be judged on the same
# validation set), the epoch budget (the search's, not a configuration's) and the metrics (the objective).
NOT_SEARCHABLE = frozenset(
    {"data.source", "data.test_fraction", "data.validation_fraction", "train.epochs", "train.metrics"}
)
# Draws differ from one another by more than this: a label reads 0.000345, not 0.00034512345.
SIGNIFICANT_DIGITS = 3
MAX_TRIES_PER_DRAW = 100


class SpaceError(ValueError):
    """A bad [search] or [space] table; one line, without the file name."""


class SettingLike(Protocol):
    """What a space needs to know of a setting of schema.SCHEMA."""

    @property
    def default(self) -> Any: ...

    @property
    def kind(self) -> str: ...

    @property
    def check(self) -> Callable[[Any], bool]: ...


@dataclass(frozen=True)
class Search:
    """How the configurations of a sweep are chosen: every grid combination, random draws, or halving."""

    method: str = "grid"
    configurations: int = 0  # draws from [space]; 0: the grid's combinations are the configurations
    min_epochs: int = 1  # halving: the first rung's epochs
    eta: int = 3  # halving: keep the best 1/eta, give them eta× the epochs
    seed: int = 0  # the draws' seed: the same file draws the same configurations


@dataclass(frozen=True)
class Dist:
    """One setting's distribution: `kind` is one of DISTRIBUTIONS, or "hidden" for {layers, units}."""

    kind: str
    args: tuple[Any, ...]
    is_int: bool = False

    def draw(self, rng: random.Random) -> Any:
        if self.kind == "choice":
            return rng.choice(self.args)
        if self.kind == "hidden":
            (lo_layers, hi_layers), (lo_units, hi_units) = self.args
            depth = rng.randint(lo_layers, hi_layers)
            return [_log_int(rng, lo_units, hi_units) for _ in range(depth)]
        lo, hi = self.args
        if self.kind == "int_uniform":
            return rng.randint(lo, hi)
        if self.kind == "log_uniform":
            value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        else:
            value = rng.uniform(lo, hi)
        return min(max(float(f"{value:.{SIGNIFICANT_DIGITS}g}"), lo), hi)

    @property
    def size(self) -> float:
        """How many distinct values it can draw (inf for a continuous range)."""
        if self.kind == "choice":
            return len(self.args)
        if self.kind == "int_uniform":
            return float(self.args[1] - self.args[0] + 1)
        return math.inf


def _log_int(rng: random.Random, lo: int, hi: int) -> int:
    """Widths log-uniform: 16..32 as likely as 128..256."""
    return min(max(round(math.exp(rng.uniform(math.log(lo), math.log(hi)))), lo), hi)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


def _show(value: Any) -> str:
    return json.dumps(value, default=str)


def parse_search(table: Any, epochs: int) -> Search:
    """[search]; `epochs` is train.epochs, the most a halving search trains a configuration."""
    if not isinstance(table, dict):
        raise SpaceError(f"search = {_show(table)} is invalid: expected a table [search]")
    for key in table:
        if key not in SEARCH_KEYS:
            raise SpaceError(
                f"unknown key 'search.{key}': expected one of {', '.join(SEARCH_KEYS)}"
                + did_you_mean(key, SEARCH_KEYS)
            )
    method = table.get("method", "grid")
    if method not in METHODS:
        raise SpaceError(f"search.method = {_show(method)} is invalid: expected one of {', '.join(METHODS)}")
    for key, lo in (("configurations", 1), ("min_epochs", 1), ("eta", 2), ("seed", 0)):
        if key in table and not (_is_int(table[key]) and table[key] >= lo):
            raise SpaceError(f"search.{key} = {_show(table[key])} is invalid: expected an integer ≥ {lo}")
    if method == "grid" and "configurations" in table:
        raise SpaceError('search.configurations: expected method = "random" or "halving" to draw them')
    if method != "halving":
        for key in ("min_epochs", "eta"):
            if key in table:
                raise SpaceError(f'search.{key}: applies to method = "halving" only')
    min_epochs = table.get("min_epochs", 1)
    if min_epochs > epochs:
        raise SpaceError(
            f"search.min_epochs = {min_epochs} is invalid: expected at most train.epochs ({epochs})"
        )
    return Search(
        method, table.get("configurations", 0), min_epochs, table.get("eta", 3), table.get("seed", 0)
    )


def parse_space(table: Any, settings: Mapping[str, SettingLike]) -> dict[str, Dist]:
    """[space]: dotted key -> distribution; `settings` are the searchable settings by dotted key."""
    if not isinstance(table, dict):
        raise SpaceError(f"space = {_show(table)} is invalid: expected a table [space] of dotted keys")
    searchable = [k for k in settings if k not in NOT_SEARCHABLE]
    return {key: _parse_dist(key, dist, settings, searchable) for key, dist in table.items()}


def _parse_dist(key: str, dist: Any, settings: Mapping[str, SettingLike], searchable: list[str]) -> Dist:
    where = f'space."{key}"'
    if key not in searchable:
        raise SpaceError(
            f"unknown key '{where}': expected one of {', '.join(searchable)}" + did_you_mean(key, searchable)
        )
    setting = settings[key]
    kinds = HIDDEN_SPACE if key == "model.hidden" else DISTRIBUTIONS
    expected = (
        "{ layers = [min, max], units = [min, max] } or { choice = [...] }"
        if key == "model.hidden"
        else f"one of {{ {' | '.join(f'{k} = ...' for k in DISTRIBUTIONS)} }}"
    )
    if not isinstance(dist, dict) or not dist:
        raise SpaceError(f"{where} = {_show(dist)} is invalid: expected {expected}")
    if "choice" in dist and len(dist) == 1:
        return _choice(where, dist["choice"], setting)
    if key == "model.hidden":
        if set(dist) != set(HIDDEN_SPACE):
            raise SpaceError(f"{where} = {_show(dist)} is invalid: expected {expected}")
        layers = _bounds(f"{where}.layers", dist["layers"], _is_int, "integers", 1)
        units = _bounds(f"{where}.units", dist["units"], _is_int, "integers", 1)
        return Dist("hidden", (layers, units), True)
    if len(dist) != 1 or next(iter(dist)) not in kinds:
        raise SpaceError(f"{where} = {_show(dist)} is invalid: expected {expected}")
    kind, bounds = next(iter(dist.items()))
    is_int = _is_int(setting.default)
    if is_int != (kind == "int_uniform"):
        wanted = "int_uniform or choice" if is_int else "uniform, log_uniform or choice"
        raise SpaceError(f"{where}: {kind} does not fit {setting.kind}: expected {wanted}")
    lo, hi = _bounds(
        f"{where}.{kind}", bounds, _is_int if is_int else _num, "integers" if is_int else "numbers", None
    )
    if kind == "log_uniform" and lo <= 0:
        raise SpaceError(f"{where}.log_uniform = {_show(bounds)} is invalid: expected bounds > 0")
    for bound in (lo, hi):
        if not setting.check(bound):
            raise SpaceError(f"{where}.{kind} = {_show(bounds)} is invalid: expected bounds {setting.kind}")
    return Dist(kind, (lo, hi) if is_int else (float(lo), float(hi)), is_int)


def _bounds(
    where: str, value: Any, ok: Callable[[Any], bool], what: str, least: int | None
) -> tuple[Any, Any]:
    floor = "" if least is None else f" ≥ {least}"
    expected = f"[min, max], two {what}{floor} with min < max"
    if not (isinstance(value, list) and len(value) == 2 and all(ok(v) for v in value)):
        raise SpaceError(f"{where} = {_show(value)} is invalid: expected {expected}")
    lo, hi = value
    if lo >= hi or (least is not None and lo < least):
        raise SpaceError(f"{where} = {_show(value)} is invalid: expected {expected}")
    return lo, hi


def _choice(where: str, choices: Any, setting: SettingLike) -> Dist:
    if not isinstance(choices, list) or not choices:
        raise SpaceError(f"{where}.choice = {_show(choices)} is invalid: expected a non-empty list")
    for choice in choices:
        if not setting.check(choice):
            raise SpaceError(f"{where}.choice: {_show(choice)} is invalid: expected each {setting.kind}")
    values = [float(c) if isinstance(setting.default, float) else c for c in choices]
    if len({_show(v) for v in values}) != len(values):
        raise SpaceError(f"{where}.choice = {_show(choices)} is invalid: expected distinct choices")
    return Dist("choice", tuple(values), _is_int(setting.default))


def check_draws(search: Search, space: Mapping[str, Dist], grid_keys: list[str], patience: bool) -> None:
    """The [search] and [space] tables agree with each other and with the grid axes of [sweep];
    `patience`: early stopping is on somewhere in the sweep."""
    if search.method == "halving" and (patience or "train.early_stopping_patience" in space):
        raise SpaceError(
            'train.early_stopping_patience: expected 0 with search.method = "halving" (its rungs stop runs)'
        )
    for key, why in (("train.metrics", "one objective"), ("train.epochs", "one epoch budget")):
        if search.method == "halving" and key in grid_keys:
            raise SpaceError(f'sweep."{key}": expected {why} for every configuration of a halving search')
    both = [key for key in space if key in grid_keys]
    if both:
        raise SpaceError(f"'{both[0]}' is in both [sweep] and [space]: expected it in one of them")
    if space and search.method == "grid":
        raise SpaceError('[space] needs search.method = "random" or "halving": expected one of them')
    if search.method == "random" and not space:
        raise SpaceError('search.method = "random" needs a [space] to draw from: expected a [space] table')
    if space and not search.configurations:
        raise SpaceError("search.configurations is missing: expected how many configurations to draw")
    if not space and search.configurations:
        raise SpaceError("search.configurations needs a [space] to draw from: expected a [space] table")
    size = math.prod(d.size for d in space.values())
    if search.configurations > size:
        raise SpaceError(
            f"search.configurations = {search.configurations} is invalid: expected at most {int(size)}, "
            f"the distinct configurations of [space]"
        )


def draw(space: Mapping[str, Dist], n: int, seed: int, label: Callable[[Any], str]) -> list[dict[str, Any]]:
    """n distinct configurations (dotted key -> value), the same for the same space, n and seed.

    Distinct as their run ids read (`label`), so two draws never share a run folder.
    """
    rng = random.Random(seed)
    found: dict[str, dict[str, Any]] = {}
    for _ in range(n * MAX_TRIES_PER_DRAW):
        if len(found) == n:
            break
        point = {key: dist.draw(rng) for key, dist in space.items()}
        found.setdefault("__".join(label(v) for v in point.values()), point)
    if len(found) < n:
        raise SpaceError(
            f"search.configurations = {n}: only {len(found)} distinct configurations drawn from [space]: "
            f"expected fewer configurations or a wider space"
        )
    return list(found.values())
