"""Neural-field datasets: many fitted networks of one architecture as one safetensors file plus an index.

folder/
  fields.safetensors   every parameter and buffer stacked on a leading member axis (row r = member r)
  index.json           the architecture (ModelInfo), the fit settings, and one record per member:
                       signal path, content hash, kind, shape, seed, status, metrics, row

The index is written after the weights and is the source of truth: rows beyond the ones it lists
(a crash between the two writes) are dropped at the next append, so appending or resuming never
loses or duplicates a member. Unreadable signals and diverged fits are recorded with no row.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.utils.data import Dataset

from ._version import __version__
from .errors import ConfigError, ExportError
from .models import rebuild
from .models.base import ModelInfo
from .signals import Signal, SignalInfo

FORMAT = "inrkit.fields/1"
WEIGHTS, INDEX = "fields.safetensors", "index.json"


def content_hash(source: str | Path | Signal) -> str:
    """sha256 of a file's bytes (of a signal's values when it has no file).

    Example:
        >>> len(content_hash("data/astronaut.png"))  # doctest: +SKIP
        64
    """
    digest = hashlib.sha256()
    if isinstance(source, Signal):
        digest.update(source.values.detach().cpu().numpy().tobytes())
    else:
        with open(source, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _clean(value: Any) -> Any:
    """JSON-safe metrics: NaN/inf become None, tensors and numpy scalars become floats."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)


class FieldStore:
    """Read and append to a dataset folder (what `fit-many` writes)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.index: dict[str, Any] = {"format": FORMAT, "inrkit_version": __version__, "model": None,
                                      "config": {}, "members": []}
        path = self.folder / INDEX
        if path.exists():
            try:
                self.index = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise ExportError(f"{path}: not a readable dataset index ({exc})") from exc
            if self.index.get("format") != FORMAT:
                raise ExportError(f"{path}: unknown dataset format {self.index.get('format')!r}")

    @property
    def members(self) -> list[dict[str, Any]]:
        return self.index["members"]

    @property
    def rows(self) -> int:
        return sum(1 for m in self.members if m.get("row") is not None)

    def finished(self) -> set[tuple[str, int]]:
        """(content hash, seed) of every member already fitted or diverged: what a resumed run skips."""
        return {(m["hash"], m["seed"]) for m in self.members if m["status"] != "unreadable"}

    def check_model(self, info: ModelInfo, config: dict[str, Any]) -> None:
        """Refuse to mix architectures (or fit settings) in one dataset."""
        stored = self.index.get("model")
        if stored is None:
            return
        stored = ModelInfo.from_dict(stored).to_dict()  # a dataset written before a field existed gets its default
        if json.dumps(stored, sort_keys=True, default=str) != json.dumps(info.to_dict(), sort_keys=True, default=str):
            raise ConfigError(f"{self.folder} holds {stored['name']} fits {stored.get('kwargs')}; "
                              f"write {info.name} {info.kwargs} to another folder")
        old = {k: self.index["config"].get(k) for k in ("steps", "lr", "lr_decay", "batch_size", "target_psnr")}
        new = {k: config.get(k) for k in old}
        if self.index["config"] and old != new:
            raise ConfigError(f"{self.folder} was fitted with {old}, not {new}; use another folder")

    def append(self, records: list[dict[str, Any]], modules: list[nn.Module | None], info: ModelInfo | None = None,
               config: dict[str, Any] | None = None) -> None:
        """Add members (a module per record, None for unreadable or diverged) and write both files atomically."""
        fresh = [m for m in modules if m is not None]
        if fresh:
            self._write_weights(fresh)
        row = self.rows
        replaced = {r["path"] for r in records if r.get("path")}
        # a file that was unreadable before and is fitted or recorded again now replaces its old record
        self.index["members"] = [m for m in self.members
                                 if not (m["status"] == "unreadable" and m.get("path") in replaced)]
        for record, module in zip(records, modules):
            record = _clean(dict(record))
            record["row"] = None if module is None else row
            row += module is not None
            self.members.append(record)
        if info is not None and self.index.get("model") is None:
            self.index["model"] = info.to_dict()
        if config and not self.index.get("config"):
            self.index["config"] = _clean(config)
        self.folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.folder / INDEX, json.dumps(self.index, indent=1).encode())

    def _write_weights(self, modules: list[nn.Module]) -> None:
        stacked = {k: v[: self.rows] for k, v in self.tensors().items()}
        new = [{k: (torch.view_as_real(t) if t.is_complex() else t).detach().cpu() for k, t in m.state_dict().items()}
               for m in modules]
        for name in new[0]:
            parts = ([stacked[name]] if name in stacked else []) + [n[name][None] for n in new]
            stacked[name] = torch.cat(parts).contiguous()
        complex_names = [k for k, t in modules[0].state_dict().items() if t.is_complex()]
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / (WEIGHTS + ".tmp")
        save_file(stacked, str(tmp), metadata={"inrkit": json.dumps({"format": FORMAT, "complex": complex_names})})
        tmp.replace(self.folder / WEIGHTS)

    def tensors(self) -> dict[str, torch.Tensor]:
        path = self.folder / WEIGHTS
        return load_file(str(path)) if path.exists() else {}


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def member_record(path: str | Path | None, signal: Signal | None, seed: int, status: str,
                  metrics: dict[str, Any] | None = None, error: str | None = None, **extra: Any) -> dict[str, Any]:
    """One index record; `hash` is the file's content hash (the values' when there is no file)."""
    source = path if path is not None and Path(path).is_file() else signal
    return {"path": str(path) if path is not None else None,
            "hash": content_hash(source) if source is not None else None,
            "name": signal.name if signal is not None else Path(str(path)).name,
            "kind": signal.kind if signal is not None else None,
            "shape": list(signal.values.shape) if signal is not None else None, "seed": int(seed),
            "status": status, "metrics": metrics or {}, "error": error,
            "signal": signal.info.to_dict() if signal is not None else None, **extra}


def flat_vectors(tensors: dict[str, torch.Tensor], names: Iterable[str]) -> torch.Tensor:
    """(rows, P) float32: every tensor flattened per row and concatenated in `names` order."""
    return torch.cat([tensors[n].flatten(1).float() for n in names], dim=1)


class NeuralFieldDataset(Dataset):
    """A folder written by `fit-many` (or `save_fields`) as a torch Dataset of fitted networks.

    Only fitted members are items (unreadable files and diverged fits stay in `skipped`). An item is
    the member's trainable parameters as one flat float32 vector (complex weights as real pairs), or,
    with `as_module=True`, a ready backbone that `render`, `evaluate` and `save` accept.

    Args:
        folder: the dataset folder (fields.safetensors + index.json).
        as_module: items are modules instead of flat vectors.

    Example:
        >>> data = NeuralFieldDataset("fields/kodak-siren")  # doctest: +SKIP
        >>> data[0].shape, data.records[0]["metrics"]["psnr"]  # doctest: +SKIP
        (torch.Size([2403]), 31.2)
    """

    def __init__(self, folder: str | Path, as_module: bool = False) -> None:
        store = FieldStore(folder)
        if not (store.folder / INDEX).exists():
            raise ExportError(f"{folder}: no {INDEX} (not a neural-field dataset)")
        self.folder, self.as_module = store.folder, as_module
        self.model_info = ModelInfo.from_dict(store.index["model"]) if store.index.get("model") else None
        self.config: dict[str, Any] = store.index.get("config", {})
        members = store.members
        self.records = sorted((m for m in members if m.get("row") is not None), key=lambda m: m["row"])
        self.skipped = [m for m in members if m.get("row") is None]
        self._tensors = store.tensors()
        meta = _weights_meta(self.folder / WEIGHTS)
        self._complex = set(meta.get("complex", []))
        if self.model_info is not None and self.records:
            template = rebuild(self.model_info)
            self.parameter_names = [n for n, p in template.named_parameters() if p.requires_grad]
            self.vectors = flat_vectors(self._tensors, self.parameter_names)
        else:
            self.parameter_names, self.vectors = [], torch.empty(0, 0)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> torch.Tensor | nn.Module:
        return self.module(i) if self.as_module else self.vectors[self._row(i)]

    def _row(self, i: int) -> int:
        if not -len(self) <= i < len(self):
            raise IndexError(f"member {i} out of range ({len(self)} members)")
        return self.records[i]["row"]

    def state_dict(self, i: int) -> dict[str, torch.Tensor]:
        row = self._row(i)
        return {k: torch.view_as_complex(v[row].contiguous()) if k in self._complex else v[row].clone()
                for k, v in self._tensors.items()}

    def module(self, i: int) -> nn.Module:
        """Member i as a backbone with its weights and its signal's layout (ready to render or save)."""
        record = self.records[i]
        info = SignalInfo.from_dict(record["signal"]) if record.get("signal") else None
        model = rebuild(self.model_info, info)
        model.load_state_dict(self.state_dict(i))
        return model.eval()

    def export(self, i: int, folder: str | Path) -> Path:
        """Write member i as a run folder (model.safetensors + metrics.json) that `inrkit render` reads."""
        from .export import save

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        record = self.records[i]
        save(self.module(i), folder / "model.safetensors", extra={"dataset": str(self.folder), "seed": record["seed"]})
        (folder / "metrics.json").write_text(json.dumps({"metrics": record["metrics"], "seed": record["seed"],
                                                         "source": record.get("path")}, indent=1))
        return folder

    def compress(self, i: int, path: str | Path, bits: int | None = 8) -> Any:
        """Write member i as an .inrz file (see `inrkit.compress`); returns its CompressStats. Weights are
        coded as changes from the init the member's seed draws where that is smaller (a random init)."""
        from .export import compress

        return compress(self.module(i), path, bits=bits, origin_seed=self.records[i]["seed"])


def _weights_meta(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return json.loads((f.metadata() or {}).get("inrkit", "{}"))


def save_fields(folder: str | Path, members: list[Any], paths: list[str | Path | None] | None = None) -> FieldStore:
    """Append the members of a `fit_many` run to a dataset folder (created when missing).

    Example:
        >>> save_fields("fields/crops", fit_many(signals, "siren", FitConfig(steps=300)))  # doctest: +SKIP
    """
    store = FieldStore(folder)
    paths = paths or [None] * len(members)
    done = [m for m in members if m.result is not None]
    info = done[0].result.model.model_info if done else None
    config = dict(done[0].result.config) if done else {}
    config.pop("seed", None)
    if info is not None:
        store.check_model(info, config)
    records, modules = [], []
    for member, path in zip(members, paths):
        if member.status == "interrupted":
            continue  # unfinished: a resumed run fits it again
        result = member.result
        records.append(member_record(path, member.signal, member.seed, member.status,
                                     result.metrics if result else None, member.error,
                                     steps=result.steps if result else None,
                                     seconds=result.seconds if result else None,
                                     time_to_target=result.time_to_target if result else None))
        modules.append(result.model if result else None)
    store.append(records, modules, info, config)
    return store
