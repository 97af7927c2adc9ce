"""The good files every corpus case starts from (tiny signals of each kind, fitted runs, an .inrz), built once.

A `Profile` says how big "huge" is. In-process (the default test) the sample limit is lowered to 2^18
through INRKIT_MAX_SAMPLES, so a PNG declaring 2048² pixels is already over it and an unchecked
decode costs megabytes, not gigabytes. In subprocesses (`benchmarks/fuzz.py`, the slow test) the real
limit stands and the sizes are the issue's own: 12000² PNGs, `--scale 1000`, `--rate 1e12`.
"""

from __future__ import annotations

import functools
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

FIT = ["--steps", "2", "--width", "8", "--device", "cpu", "--quiet", "--no-plots"]
"""The cheapest fit: every case that fits passes these."""


@dataclass(frozen=True)
class Profile:
    """How big the huge numbers of the corpus are, and the environment cases run with."""

    name: str
    env: dict[str, str] = field(default_factory=dict)
    side: int = 12000  # a declared image/volume side whose square is over the sample limit
    scale: str = "1000"  # render --scale over the limit for a 16² run
    rate: str = "1e12"  # render --rate over the limit for a 400-sample clip
    frames: str = "100000"  # render --frames over the limit for an 8² video
    size: str = "100000x100000"  # --size over the limit


IN_PROCESS = Profile("in-process", {"INRKIT_MAX_SAMPLES": str(2**18)}, side=2048, scale="64", rate="8e6",
                     frames="5000", size="1024x1024")
SUBPROCESS = Profile("subprocess", frames="5000000")  # 5 M frames of 8²: over the 2^26 limit


def _pattern(h: int, w: int, phase: float = 0.0) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w] / max(h - 1, 1)
    return (np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x * y + phase)], -1) * 255).astype(np.uint8)


def write_signals(root: Path) -> None:
    """The good inputs: img.png (16²), img20.png (20²), clip.wav (400 samples), clip.gif and clip.mp4
    (3 frames of 8²), cube.obj (a closed mesh), ball.xyz (an oriented point cloud)."""
    import imageio.v3 as iio
    import soundfile as sf

    from .files import cube_obj

    iio.imwrite(root / "img.png", _pattern(16, 16))
    iio.imwrite(root / "img20.png", _pattern(20, 20, 1.0))
    sf.write(root / "clip.wav", 0.5 * np.sin(np.arange(400) / 10), 8000, subtype="PCM_16")
    frames = np.stack([_pattern(8, 8, k) for k in range(3)])
    iio.imwrite(root / "clip.gif", frames, duration=100, loop=0)
    try:
        iio.imwrite(root / "clip.mp4", np.stack([_pattern(16, 16, k) for k in range(3)]), plugin="pyav",
                    codec="libx264", fps=10)
    except Exception:  # no PyAV or no H.264 encoder: the mp4 cases use bytes that need none
        (root / "clip.mp4").write_bytes(b"")
    cube_obj(root / "cube.obj")
    rng = np.random.default_rng(0)
    points = rng.normal(size=(400, 3))
    points /= np.linalg.norm(points, axis=1, keepdims=True)
    np.savetxt(root / "ball.xyz", np.hstack([0.5 * points, points]), fmt="%.5f")


RUNS = {  # run folder -> (signal, extra fit options)
    "run_image": ("img.png", []),
    "run_audio": ("clip.wav", []),
    "run_video": ("clip.gif", []),
    "run_mesh": ("cube.obj", ["--eval-res", "16"]),
}


class Workspace:
    """The base folder: good signals, fitted runs (`run_image`, ...), `model.inrz`, a folder `sigs/`.

    Cases copy what they need from here into their own folder, so nothing here ever changes.
    """

    def __init__(self, root: Path, profile: Profile, mode: str = "in-process") -> None:
        self.root, self.profile, self.mode = Path(root), profile, mode

    @functools.cached_property
    def base(self) -> Path:
        from .run import invoke as in_process
        from .run import invoke_subprocess

        def invoke(argv: list[str], cwd: Path, profile: Profile) -> object:
            # a process that forks cases must not have run torch work itself: build in subprocesses
            return in_process(argv, cwd, profile) if self.mode == "in-process" else \
                invoke_subprocess(argv, cwd, profile, timeout=600)

        base = self.root / "base"
        if (base / "ready").exists():
            return base
        base.mkdir(parents=True, exist_ok=True)
        write_signals(base)
        for name, (signal, extra) in RUNS.items():
            result = invoke(["fit", signal, *FIT, *extra, "--out", name], base, self.profile)
            if result.code != 0:
                raise RuntimeError(f"the corpus base run {name} failed: {result.stderr[-2000:]}")
        for argv in (["export", "run_image", "--out", "model.inrz", "--quiet"],
                     ["bench", "-s", "img.png", "-m", "siren:hidden_features=8", "--steps", "1", "--device", "cpu",
                      "--quiet", "--out", "bench_ok"]):
            result = invoke(argv, base, self.profile)
            if result.code != 0:
                raise RuntimeError(f"the corpus base command {argv[0]} failed: {result.stderr[-2000:]}")
        (base / "sigs").mkdir(exist_ok=True)
        for name in ("img.png", "img20.png"):
            shutil.copy(base / "img.png", base / "sigs" / name)  # same shape: meta-learn needs it
        (base / "ready").write_text("ok")
        return base

    def copy(self, name: str, target: Path, as_name: str | None = None) -> Path:
        """Copy a base file or folder into a case folder."""
        source, dest = self.base / name, target / (as_name or name)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, dest)
        else:
            shutil.copy(source, dest)
        return dest
