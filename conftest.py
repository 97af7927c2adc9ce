"""Doctest setup: the examples in inrkit's docstrings run from the repository root (they read
data/astronaut.png) with a private shape cache, so they never write to the user's ~/.cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _doctest_private_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    if type(request.node).__name__ == "DoctestItem":
        monkeypatch.setenv("INRKIT_CACHE", str(tmp_path_factory.mktemp("inrkit-cache")))
