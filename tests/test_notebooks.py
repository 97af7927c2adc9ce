"""The notebooks run top to bottom on the public API (with few steps)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# Notebooks over ~30 s at 15 steps on a busy 2-core machine say so in their metadata ({"inrkit": {"slow": true}}).
SLOW = {p.name for p in NOTEBOOKS if nbformat.read(p, as_version=4).metadata.get("inrkit", {}).get("slow")}
WITH_FIGURES = ("signal_kinds", "backbones_frequency", "bench_explorer", "compression")


@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.slow) if p.name in SLOW else p
                                  for p in NOTEBOOKS], ids=lambda p: p.name)
def test_notebook_executes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INRKIT_NB_STEPS", "15")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("name", WITH_FIGURES)
def test_notebook_is_stored_with_its_figures(name: str) -> None:
    """A reader on a code host sees the figures: outputs are committed, as small PNGs."""
    nb = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / f"{name}.ipynb", as_version=4)
    pngs = [o["data"]["image/png"] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if "image/png" in o.get("data", {})]
    assert pngs and all(len(p) < 400_000 for p in pngs)  # base64 of under ~300 kB each
