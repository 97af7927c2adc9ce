"""Reports regenerated from the store alone: Markdown and CSV tables per signal kind, plus plots.

Per kind, models are rows; each metric is the mean ± std over seeds of the per-seed mean over
signals; the best mean of each column is in bold. Nothing here reads anything but `results.sqlite`.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..signals import KINDS
from .budgets import equal_budget_section
from .published import references_for
from .store import ResultStore

TIMING = ("seconds", "time_to_target")


def headline(kind: str, metrics: list[str]) -> str | None:
    """The kind's headline metric (PSNR for images, IoU for shapes...) or the first one available."""
    name = KINDS[kind].headline if kind in KINDS else None  # a kind no longer registered still gets a report
    return name if name in metrics else (metrics[0] if metrics else None)


def higher_is_better(kind: str, name: str) -> bool | None:
    """Which way a column is better, as the signal kind declares it (timings: lower); None if unknown."""
    if name in TIMING:
        return False
    metric = KINDS[kind].metric(name) if kind in KINDS else None
    return metric.higher_is_better if metric else None


def metric_names(rows: list[dict[str, Any]], kind: str) -> list[str]:
    """The table's metric columns: the kind's declared metrics in their order, then any others found.

    Notes about a metric ("ms_ssim_scales": how many MS-SSIM scales a small image had) are not columns.
    """
    found = {k for r in rows for k in r["metrics"] if not k.endswith("_scales")}
    declared = [m.name for m in KINDS[kind].metrics if m.name in found] if kind in KINDS else []
    names = declared + sorted(found - set(declared))
    first = headline(kind, names)
    return ([first] if first else []) + [n for n in names if n != first]


def _mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _over_seeds(rows: list[dict[str, Any]], get: Any) -> tuple[float, float]:
    """Mean ± std over seeds of the per-seed mean over signals."""
    by_seed: dict[int, list[float]] = defaultdict(list)
    for r in rows:
        value = get(r)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            by_seed[r["seed"]].append(float(value))
    return _mean_std([statistics.fmean(v) for _, v in sorted(by_seed.items())])


def kind_table(rows: list[dict[str, Any]], kind: str, published: bool = True) -> list[dict[str, Any]]:
    """One dict per model: params, <metric>_mean/_std for each metric and timing, published columns."""
    metrics = metric_names(rows, kind)
    refs = references_for(kind, sorted({r["signal"] for r in rows})) if published else []
    table = []
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model]
        sizes = [r["params"] for r in mine if r["params"] is not None]  # a custom runner may record none
        entry: dict[str, Any] = {"model": model, "params": round(statistics.fmean(sizes)) if sizes else None,
                                 "cases": len(mine), "signals": len({r["signal"] for r in mine})}
        for name in metrics:
            entry[f"{name}_mean"], entry[f"{name}_std"] = _over_seeds(mine, lambda r, n=name: r["metrics"].get(n))
        for name in TIMING:
            entry[f"{name}_mean"], entry[f"{name}_std"] = _over_seeds(mine, lambda r, n=name: r[n])
        if any((r.get("config") or {}).get("fit", {}).get("target_psnr") is not None for r in mine):
            entry["reached_target"] = f"{sum(r['time_to_target'] is not None for r in mine)}/{len(mine)}"
        for ref in refs:
            entry[ref.label] = ref.values.get(mine[0]["model_name"]) if model == mine[0]["model_name"] else None
        table.append(entry)
    return table


def signal_table(rows: list[dict[str, Any]], metric: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Headline metric per model (rows) and signal (columns): mean ± std over seeds."""
    signals = sorted({r["signal_name"] for r in rows})
    table = []
    for model in sorted({r["model"] for r in rows}):
        entry: dict[str, Any] = {"model": model}
        for name in signals:
            mine = [r for r in rows if r["model"] == model and r["signal_name"] == name]
            entry[name] = _over_seeds(mine, lambda r: r["metrics"].get(metric))
        table.append(entry)
    return signals, table


def fmt(value: Any, name: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    if name in TIMING:
        return f"{value:.2f}"
    if abs(value) >= 10 or name == "psnr":
        return f"{value:.2f}"
    return f"{value:.4f}" if name in ("ssim", "iou", "ms_ssim") else f"{value:.3g}"


def _best(values: list[float], kind: str, name: str) -> float | None:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    better = higher_is_better(kind, name)
    if len(finite) < 2 or better is None:
        return None
    return max(finite) if better else min(finite)


def markdown_table(table: list[dict[str, Any]], kind: str, metrics: list[str]) -> str:
    """Models as rows, `mean ± std` cells, best of each column in bold."""
    cols = [*metrics, *(t for t in TIMING if any(not math.isnan(e[f"{t}_mean"]) for e in table))]
    refs = [k for k in (table[0] if table else {}) if k.startswith("published") or k == "reached_target"]
    head = ["model", "params", *cols, *refs]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    best = {c: _best([e[f"{c}_mean"] for e in table], kind, c) for c in cols}
    for e in table:
        cells = [e["model"], fmt(e["params"])]
        for c in cols:
            mean, std = e[f"{c}_mean"], e[f"{c}_std"]
            text = fmt(mean, c) + (f" ± {fmt(std, c)}" if not math.isnan(std) and std > 0 else "")
            cells.append(f"**{text}**" if best[c] is not None and mean == best[c] else text)
        cells.extend(fmt(e.get(r)) if not isinstance(e.get(r), str) else e[r] for r in refs)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(table: list[dict[str, Any]], path: Path) -> Path:
    """Plain numbers (6 significant digits), one column per mean and std, no formatting."""
    keys = list(dict.fromkeys(k for e in table for k in e))
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for e in table:
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) and not math.isnan(v) else
                                 "" if isinstance(v, float) or v is None else v) for k, v in e.items()})
    return path


def write_report(out: str | Path, published: bool = True, plots: bool = True) -> list[Path]:
    """Regenerate report.md, table_<kind>.csv/.md, results.csv and the plots from the store.

    Example:
        >>> paths = write_report("bench-out")  # doctest: +SKIP
    """
    out = Path(out)
    rows = ResultStore(out).rows()
    try:
        return _write_report(out, rows, published, plots)
    except OSError as exc:  # a read-only share, a full disk, a folder where report.md should be
        raise ConfigError(f"{out}: cannot write the report there ({exc.strerror or exc}); the results "
                          "store is unchanged") from None


def _write_report(out: Path, rows: list[dict[str, Any]], published: bool, plots: bool) -> list[Path]:
    ok = [r for r in rows if r["status"] == "ok"]
    errors = [r for r in rows if r["status"] != "ok"]
    written = [write_results_csv(rows, out / "results.csv")]
    lines = ["# Benchmark report", "",
             f"{len(rows)} cases in the store: {len(ok)} finished, {len(errors)} failed.", ""]
    for kind in sorted({r["kind"] for r in ok}):
        mine = [r for r in ok if r["kind"] == kind]
        metrics = metric_names(mine, kind)
        table = kind_table(mine, kind, published)
        written.append(write_csv(table, out / f"table_{kind}.csv"))
        md = markdown_table(table, kind, metrics)
        (out / f"table_{kind}.md").write_text(md + "\n")
        written.append(out / f"table_{kind}.md")
        lines += [f"## {kind}", "", (f"Mean ± std over seeds {sorted({r['seed'] for r in mine})} of the mean "
                                     f"over {len({r['signal'] for r in mine})} signal(s); seconds = training time."),
                  "", md, ""]
        lines += _signal_section(mine, metrics[0] if metrics else None)
        lines += equal_budget_section(mine)
        lines += [f"*{ref.label}: {ref.source}.*" for ref in references_for(kind, [r["signal"] for r in mine])
                  if published and any(e.get(ref.label) is not None for e in table)] + [""]
        if plots:
            from .plots import make_plots

            for path, note in make_plots(mine, kind, metrics[0] if metrics else None, out):
                if path is not None:
                    written.append(path)
                    lines += [f"![{path.stem}]({path.name})", ""]
                else:
                    lines += [f"*{note}*", ""]
    if errors:
        lines += ["## Failed cases", "", "| model | signal | seed | error |", "|---|---|---:|---|"]
        lines += [f"| {r['model']} | {r['signal_name']} | {r['seed']} | {str(r['error']).replace('|', '/')} |"
                  for r in errors] + [""]
    (out / "report.md").write_text("\n".join(lines))
    return [out / "report.md", *written]


def _signal_section(rows: list[dict[str, Any]], metric: str | None) -> list[str]:
    if metric is None or len({r["signal"] for r in rows}) < 2:
        return []
    signals, table = signal_table(rows, metric)
    lines = [f"{metric} per signal:", "", "| model | " + " | ".join(signals) + " |",
             "|---|" + "---:|" * len(signals)]
    for e in table:
        cells = [fmt(e[s][0], metric) + (f" ± {fmt(e[s][1], metric)}" if e[s][1] > 0 else "") for s in signals]
        lines.append(f"| {e['model']} | " + " | ".join(cells) + " |")
    return lines + [""]


def write_results_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """Every row of the store, metrics flattened, history left out."""
    metric_keys = sorted({k for r in rows for k in r["metrics"]})
    fields = ["signal_name", "kind", "model", "seed", "status", "error", *metric_keys, "params", "steps", "seconds",
              "time_to_target", "device", "config_hash", "signal", "finished"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({**r, **r["metrics"]})
    return path
