"""What a benchmark runs: a spec (TOML file or CLI flags) resolved into a list of cases.

A case is one (signal, model, seed) fit under one configuration. Its key (signal path, model label,
seed, config hash) is what the results store makes unique, so a re-run skips what is done.
"""

from __future__ import annotations

import glob
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SignalError
from ..utils import parse_count
from .spec_check import FIELDS, MODEL_FIELDS, check_kinds, check_types, check_unknown, describe, read_spec_file

FIT_KEYS = ("steps", "epochs", "samples", "seconds", "lr", "lr_decay", "batch_size", "loss", "targets",
            "target_psnr", "target_iou", "eval_every", "recipe", "warmup", "sampler", "precision", "compile", "threads")
"""Per-kind settings that go to FitConfig; every other per-kind key goes to the kind's loader."""


@dataclass
class ModelSpec:
    """A backbone to run: registry `name`, constructor `overrides`, and the `label` tables show.

    `params` (a budget for this model alone) and `fit` (FitConfig settings for this model alone)
    win over the spec's and the kind's; a protocol that runs each backbone at its published size or
    learning rate needs them.
    """

    name: str
    label: str
    overrides: dict[str, Any] = field(default_factory=dict)
    params: int | None = None
    fit: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.params = budget(self.params)

    @classmethod
    def parse(cls, item: str | dict[str, Any]) -> ModelSpec:
        """'siren', 'siren:hidden_layers=1:first_omega_0=10' or {name=, label=, params=, fit=, ...overrides}."""
        if isinstance(item, dict):
            item = dict(item)
            check_types(item, MODEL_FIELDS, where="a model table's ")
            name = item.pop("name", None)
            if not name:
                raise ConfigError(f"model entry {item} needs a name")
            label, params, fit = item.pop("label", None), item.pop("params", None), item.pop("fit", {})
            unknown = sorted(set(fit) - set(FIT_KEYS))
            if unknown:
                raise ConfigError(f"model {name}: unknown fit setting(s) {', '.join(unknown)}; "
                                  f"known: {', '.join(FIT_KEYS)}")
            return cls(name, label or _label(name, item), item, params, fit)
        name, *pairs = item.strip().split(":")
        overrides = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep:
                raise ConfigError(f"cannot read model option {pair!r} in {item!r}; write name:key=value")
            overrides[key.strip()] = parse_value(value)
        return cls(name.strip().lower(), item.strip(), overrides)

    def to_entry(self) -> dict[str, Any]:
        """The spec entry that parses back to this model (spec.resolved.json's layout)."""
        extra = {"params": self.params} if self.params is not None else {}
        return {"name": self.name, "label": self.label, **self.overrides, **extra,
                **({"fit": self.fit} if self.fit else {})}


def budget(value: int | float | str | None) -> int | None:
    """A parameter budget ("200k", 2e5, 200000) as an int; 'inf' or 'nan' is a ConfigError, not an overflow."""
    from ..limits import check_params

    try:
        count = parse_count(value)
    except (OverflowError, ValueError):
        raise ConfigError(f"params must be a finite count such as 200000 or \"200k\"; got {value!r}") from None
    return None if count is None else check_params(count, "params")


def _label(name: str, overrides: dict[str, Any]) -> str:
    return ":".join([name, *(f"{k}={v}" for k, v in sorted(overrides.items()))])


@dataclass
class BenchSpec:
    """A benchmark: signals x models x seeds at one budget, with per-kind settings.

    Attributes:
        signals: files, folders (their signal files) or glob patterns.
        models: model names, glob patterns over the registry ("s*") or variants ("siren:hidden_layers=1").
        seeds: seeds; each case seeds model init and sampling with it.
        params: parameter budget for every model (e.g. "200k"); None keeps each model's default size.
        steps: optimisation steps (a per-kind "steps" overrides it).
        target_psnr: stop each fit once it reaches this PSNR and record the time it took (per-kind overrides).
        kinds: per-kind settings, e.g. {"image": {"crop": 128, "lr": 1e-3}}: FitConfig keys
            (steps, lr, lr_decay, batch_size, loss, target_psnr) go to the fit, the rest to the loader.
        out: results folder.
        device: "auto", "cpu", "cuda", ...
        workers: cases run at once (processes; one GPU each where there are several).
        executor: "local" or "ray".
        ray_address: passed to ray.init (None starts a local Ray).
        isolate: run each case in its own process.
        keep_reconstructions: write each case's reconstruction file (thumbnails are always kept).
        retry_errors: re-run cases that ended in an error row.
        published: add published reference numbers to the tables.
        kind: read every signal as this kind (e.g. "sdf" for meshes) instead of detecting it.
        runner: what a case does: "fit" (fit and judge), "rd" (fit, then store at `options["bits"]`),
            or a name registered with `inrkit.bench.register_runner`.
        options: the runner's own settings, passed to it in `Case.options`.
        batched: train cases that differ only in signal and seed together with `fit_many` (true, false,
            or "auto": on a GPU only); see bench/grouped.py.
    """

    signals: list[str] = field(default_factory=list)
    models: list[Any] = field(default_factory=lambda: ["siren"])
    seeds: list[int] = field(default_factory=lambda: [0])
    params: int | str | None = None
    steps: int = 1000
    target_psnr: float | None = None
    kinds: dict[str, dict[str, Any]] = field(default_factory=dict)
    out: str = "bench"
    device: str = "auto"
    workers: int = 1
    executor: str = "local"
    ray_address: str | None = None
    isolate: bool = False
    keep_reconstructions: bool = False
    retry_errors: bool = False
    published: bool = True
    kind: str | None = None
    runner: str = "fit"
    options: dict[str, Any] = field(default_factory=dict)
    batched: bool | str = "auto"

    def __post_init__(self) -> None:
        self.params = budget(self.params)
        if not isinstance(self.steps, int) or self.steps <= 0:
            raise ConfigError(f"steps must be a positive integer, got {self.steps!r}")
        if not isinstance(self.workers, int) or self.workers <= 0:
            raise ConfigError(f"workers must be a positive integer, got {self.workers!r}")
        if self.batched not in (True, False, "auto"):
            raise ConfigError(f"batched must be true, false or \"auto\", got {self.batched!r}")
        if self.executor not in ("local", "ray"):
            raise ConfigError(f"unknown executor {self.executor!r}; choose local or ray")
        if not self.seeds or not all(isinstance(s, int) and 0 <= s < 2**63 for s in self.seeds):
            raise ConfigError(f"seeds must be a non-empty list of integers from 0 to 2**63 - 1 (the store's "
                              f"64 bits), got {self.seeds!r}"[:300])
        if self.params is not None and self.params <= 0:
            raise ConfigError(f"params must be a positive count, got {self.params}")
        if self.target_psnr is not None and not (0 < self.target_psnr < math.inf):
            raise ConfigError(f"target_psnr must be a positive number of dB, got {self.target_psnr}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Case:
    """One fit of the grid. `key` is unique in the results store."""

    signal: str
    kind: str
    model: ModelSpec
    seed: int
    fit: dict[str, Any]
    load: dict[str, Any]
    params: int | None
    device: str
    config_hash: str
    runner: str = "fit"
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, int, str]:
        return (self.signal, self.model.label, self.seed, self.config_hash)

    @property
    def signal_name(self) -> str:
        return Path(self.signal).stem or Path(self.signal).name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Case:
        return cls(**{**data, "model": ModelSpec(**data["model"])})


def parse_value(text: str) -> Any:
    """'3' -> 3, '1e-3' -> 0.001, 'true' -> True, '[1,2]' -> [1, 2], anything else stays a string."""
    try:
        return json.loads(text.strip())
    except json.JSONDecodeError:
        return text.strip()


def load_spec(path: str | Path, **overrides: Any) -> BenchSpec:
    """Read a TOML spec (or a spec.resolved.json); keyword `overrides` that are not None win over the file.

    Example:
        >>> spec = load_spec("bench.toml", steps=100)  # doctest: +SKIP
    """
    data = read_spec_file(Path(path))
    try:
        return make_spec(data, **overrides)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def make_spec(data: dict[str, Any], **overrides: Any) -> BenchSpec:
    """A BenchSpec from a dict (TOML layout: top-level fields, one table per signal kind)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a spec is a table of settings (TOML or a JSON object); got {describe(data)}")
    data = {**data, **{k: v for k, v in overrides.items() if v is not None}}
    tables = data.pop("model", [])  # TOML [[model]] tables
    check_types({"model": tables, "kinds": data.get("kinds", {})},
                {"model": ("a list of model tables ([[model]])", lambda v: isinstance(v, list), False),
                 "kinds": FIELDS["kinds"]})
    kinds = dict(data.pop("kinds", {}))
    for key in [k for k, v in data.items() if k not in FIELDS and isinstance(v, dict)]:
        kinds[key] = {**kinds.get(key, {}), **data.pop(key)}
    check_unknown(data, FIELDS)
    check_types(data, FIELDS)
    check_kinds(kinds, FIT_KEYS)
    if tables:
        data["models"] = [*data.get("models", []), *tables]
    for entry in data.get("models", []):
        if isinstance(entry, dict):  # checked again when parsed; here the error can name the spec file
            check_types(entry, MODEL_FIELDS, where="a model table's ")
    return BenchSpec(**data, kinds=kinds)


def expand_signals(patterns: list[str], kind: str | None = None) -> list[tuple[str, str]]:
    """(path, kind) for each file, folder or glob; folders give their signal files, sorted.

    `kind` forces the kind of every signal (meshes are occupancy or sdf); None detects it per file.
    """
    from ..signals import KINDS, detect_kind, get_kind

    if kind is not None:
        get_kind(kind)  # an unknown kind fails now, with the list of known ones

    suffixes = {s for k in KINDS.values() for s in k.suffixes if s != "/"}
    found: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise SignalError(f"{pattern}: no files match")
        for match in matches:
            path = Path(match)
            if not path.exists():
                raise SignalError(f"{path}: no such file")
            inner = sorted(p for p in path.iterdir() if p.suffix.lower() in suffixes) if path.is_dir() else []
            found.extend(str(p.resolve()) for p in (inner or [path]))
    unique = list(dict.fromkeys(found))
    if not unique:
        raise SignalError("no signals given; pass --signals FILES or list them in the spec")
    return [(p, kind or _kind_or_unknown(detect_kind, Path(p))) for p in unique]


def _kind_or_unknown(detect: Any, path: Path) -> str:
    """An undetectable file still becomes cases, so the store shows why it failed."""
    try:
        return detect(path)
    except SignalError:
        return "unknown"


def expand_models(items: list[Any]) -> list[ModelSpec]:
    """Names, registry glob patterns and variants -> ModelSpecs (unknown names fail now, not mid-run)."""
    from ..models import get_entry, list_models

    specs: list[ModelSpec] = []
    for item in items:
        parts = [p for p in item.split(",") if p.strip()] if isinstance(item, str) else [item]
        for part in parts:
            spec = ModelSpec.parse(part)
            if any(c in spec.name for c in "*?["):
                names = list_models(spec.name)
                if not names:
                    raise ConfigError(f"model pattern {spec.name!r} matches no model; "
                                      f"known: {', '.join(list_models())}")
                specs.extend(ModelSpec(n, _label(n, spec.overrides), dict(spec.overrides), spec.params, dict(spec.fit))
                             for n in names)
            else:
                get_entry(spec.name)
                specs.append(spec)
    if not specs:
        raise ConfigError("no models given")
    return list({s.label: s for s in specs}.values())


def config_hash(payload: dict[str, Any]) -> str:
    blob = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def resolve(spec: BenchSpec) -> list[Case]:
    """Every case of the grid, signal-major (so each signal loads once in a serial run).

    Example:
        >>> cases = resolve(BenchSpec(signals=["data/*.png"], models=["siren", "ffn"], seeds=[0, 1]))  # doctest: +SKIP
    """
    check_kinds(spec.kinds, FIT_KEYS)  # --set KIND.KEY=VALUE from the CLI too
    signals, models = expand_signals(spec.signals, spec.kind), expand_models(spec.models)
    cases = []
    for path, kind in signals:
        settings = dict(spec.kinds.get(kind, {}))
        top = {"steps": spec.steps, **({"target_psnr": spec.target_psnr} if spec.target_psnr is not None else {})}
        kind_fit = _merge_fit(top, {k: settings.pop(k) for k in FIT_KEYS if k in settings})
        for model in models:
            fit, params = _merge_fit(kind_fit, model.fit), model.params if model.params is not None else spec.params
            cases.extend(make_case(path, kind, model, seed, fit=fit, load=settings, params=params,
                                   device=spec.device, runner=spec.runner, options=spec.options)
                         for seed in spec.seeds)
    return cases


BUDGET_KEYS = ("steps", "epochs", "samples")


def _merge_fit(inherited: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """Fit settings over inherited ones (a model's over its kind's, a kind's over the spec's): one that
    names its own budget (say epochs) replaces the inherited budget instead of adding a second."""
    if any(key in own for key in BUDGET_KEYS):
        inherited = {k: v for k, v in inherited.items() if k not in BUDGET_KEYS}
    return {**inherited, **own}


def make_case(signal: str, kind: str, model: ModelSpec, seed: int = 0, *, fit: dict[str, Any] | None = None,
              load: dict[str, Any] | None = None, params: int | None = None, device: str = "auto",
              runner: str = "fit", options: dict[str, Any] | None = None) -> Case:
    """One Case with its config hash: everything that changes the result is in the hash, so a store
    keeps a changed case apart from the old one. Scripts with their own case lists build them here.

    Example:
        >>> case = make_case("a.png", "image", ModelSpec("siren", "siren"), fit={"steps": 10})
        >>> case.key[1:3], len(case.config_hash)
        (('siren', 0), 12)
    """
    fit, load, options = dict(fit or {}), dict(load or {}), dict(options or {})
    payload = {"model": model.name, "overrides": model.overrides, "params": params, "fit": fit, "load": load,
               "kind": kind}
    if runner != "fit" or options:  # plain fit cases keep the hashes of earlier stores
        payload.update(runner=runner, options=options)
    return Case(signal, kind, model, seed, fit, load, params, device, config_hash(payload), runner, options)
