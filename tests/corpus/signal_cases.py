"""Signal files of every kind, damaged, mislabelled, declaring huge sizes, truncated, empty or silent,
each through the commands that read signals (fit, eval, fit-many, meta-learn, rd, bench)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from . import files
from .cases import SIGNAL_COMMANDS, Case, Command, eval_command, through
from .workspace import Profile


def _bytes(data: bytes) -> Any:
    return lambda path, ws: path.write_bytes(data)


def _base_bytes(name: str, cut: slice | None = None) -> Any:
    def make(path: Path, ws: Any) -> None:
        data = (ws.base / name).read_bytes()
        path.write_bytes(data[cut] if cut is not None else data)
    return make


def _image(array: np.ndarray, **kwargs: Any) -> Any:
    def make(path: Path, ws: Any) -> None:
        import imageio.v3 as iio

        iio.imwrite(path, array, **kwargs)
    return make


def _folder(path: Path, ws: Any) -> None:
    path.mkdir()


NOISE = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
TEXT = b"this is a note, not a signal\n" * 8
GRADIENT = (np.mgrid[0:16, 0:16][1] * 16).astype(np.uint8)


def image_inputs(profile: Profile) -> list[tuple[str, str, Any, dict[str, Any]]]:
    """(label, file name, maker, flags): damaged first, then legitimately unusual ones."""
    rgb = np.stack([GRADIENT, GRADIENT.T, 255 - GRADIENT], -1)
    with_nan = np.where(np.eye(16, dtype=bool), np.nan, GRADIENT / 255).astype(np.float32)
    with_inf = np.where(np.eye(16, dtype=bool), np.inf, GRADIENT / 255).astype(np.float32)
    bad = [
        ("empty", "x.png", _bytes(b"")),
        ("noise", "x.png", _bytes(NOISE)),
        ("truncated", "x.png", _base_bytes("img.png", slice(0, 300))),
        ("header-only", "x.png", _base_bytes("img.png", slice(0, 33))),
        ("wav-named-png", "x.png", _base_bytes("clip.wav")),
        ("text-named-png", "x.png", _bytes(TEXT)),
        ("gif-named-png", "x.png", _base_bytes("clip.gif")),
        ("declares-huge", "x.png", lambda p, ws: files.bomb_png(p, profile.side)),
        ("declares-zero-width", "x.png", lambda p, ws: files.zero_size_png(p)),
        ("truncated-jpeg", "x.jpg", lambda p, ws: (_image(rgb)(p, ws), p.write_bytes(p.read_bytes()[:200]))),
        ("five-channels", "x.tif", _image(np.zeros((16, 16, 5), np.uint8))),
        ("folder-named-png", "x.png", _folder),
    ]
    unusual = [
        ("one-pixel", "x.png", _image(np.zeros((1, 1, 3), np.uint8)), {}),
        ("black", "x.png", _image(np.zeros((16, 16, 3), np.uint8)), {"constant_ok": True}),
        ("sixteen-bit", "x.png", _image(GRADIENT.astype(np.uint16) * 257), {}),
        ("grey", "x.png", _image(GRADIENT), {}),
        ("rgba", "x.png", _image(np.dstack([rgb, np.full((16, 16), 128, np.uint8)])), {}),
        ("png-named-jpg", "x.jpg", _base_bytes("img.png"), {}),
        ("nan-pixels", "x.tif", _image(with_nan), {}),
        ("inf-pixels", "x.tif", _image(with_inf), {}),
        ("one-row", "x.png", _image(np.zeros((1, 64, 3), np.uint8)), {}),
    ]
    return [(label, name, make, {}) for label, name, make in bad] + \
        [(label, name, make, {"may_succeed": True, **flags}) for label, name, make, flags in unusual]


def _wav(samples: np.ndarray, rate: int = 8000, subtype: str = "PCM_16") -> Any:
    def make(path: Path, ws: Any) -> None:
        import soundfile as sf

        sf.write(path, samples, rate, subtype=subtype, format="WAV")
    return make


def audio_inputs(profile: Profile) -> list[tuple[str, str, Any, dict[str, Any]]]:
    tone = 0.5 * np.sin(np.arange(400) / 10)
    nan_tone = tone.astype(np.float32)
    nan_tone[::7] = np.nan
    bad = [
        ("empty", "x.wav", _bytes(b"")),
        ("noise", "x.wav", _bytes(NOISE)),
        ("header-cut", "x.wav", _base_bytes("clip.wav", slice(0, 20))),
        ("png-named-wav", "x.wav", _base_bytes("img.png")),
        ("text-named-wav", "x.wav", _bytes(TEXT)),
        ("no-frames", "x.wav", lambda p, ws: files.wav_header(p, 0, 0)),
        ("nan-samples", "x.wav", _wav(nan_tone, subtype="FLOAT")),
    ]
    unusual = [
        # a cut file may be fitted only with a warning that says so
        ("frames-missing", "x.wav", lambda p, ws: files.wav_header(p, 8000, 3989), {"warns": True}),
        ("declares-2g-frames", "x.wav", lambda p, ws: files.wav_header(p, 2**31, 400), {"warns": True}),
        ("silent", "x.wav", _wav(np.zeros(400)), {"constant_ok": True}),
        ("one-sample", "x.wav", _wav(np.array([0.25])), {"constant_ok": True}),
        ("stereo", "x.wav", _wav(np.stack([tone, -tone], -1)), {}),
        ("eight-bit", "x.wav", _wav(tone, subtype="PCM_U8"), {}),
        ("rate-1hz", "x.wav", _wav(tone, rate=1), {}),
    ]
    limit = int(profile.env.get("INRKIT_MAX_SAMPLES", 0))
    if limit and limit < 2**22:  # a real file over the lowered limit: refused from its header
        bad.append(("over-the-limit", "x.wav", _wav(np.zeros(limit + 1))))
    return [(label, name, make, {}) for label, name, make in bad] + \
        [(label, name, make, {"may_succeed": True, **flags}) for label, name, make, flags in unusual]


def video_inputs(profile: Profile) -> list[tuple[str, str, Any, dict[str, Any]]]:
    frames = np.stack([np.full((8, 8, 3), 40 * k, np.uint8) for k in range(3)])

    def frame_folder(path: Path, ws: Any, sizes: tuple[int, ...] = (8, 8, 12)) -> None:
        import imageio.v3 as iio

        path.mkdir()
        for k, side in enumerate(sizes):
            iio.imwrite(path / f"{k:03d}.png", np.full((side, side, 3), 30 * k, np.uint8))

    bad = [
        ("empty-mp4", "x.mp4", _bytes(b"")),
        ("noise-mp4", "x.mp4", _bytes(NOISE)),
        ("truncated-mp4", "x.mp4", _base_bytes("clip.mp4", slice(0, 600))),
        ("text-named-mp4", "x.mp4", _bytes(TEXT)),
        ("wav-named-mp4", "x.mp4", _base_bytes("clip.wav")),
        ("truncated-gif", "x.gif", _base_bytes("clip.gif", slice(0, 40))),
        ("declares-huge-gif", "x.gif", lambda p, ws: files.bomb_gif(p, profile.side)),
        ("frames-of-two-sizes", "frames/", lambda p, ws: frame_folder(p.parent / "frames", ws)),
        ("empty-frame-folder", "frames/", lambda p, ws: (p.parent / "frames").mkdir()),
    ]
    unusual = [
        ("one-frame-gif", "x.gif", _image(frames[:1]), {}),
        ("black-gif", "x.gif", _image(np.zeros((3, 8, 8, 3), np.uint8), duration=100, loop=0),
         {"constant_ok": True}),
        ("png-named-mp4", "x.mp4", _base_bytes("img.png"), {}),
    ]
    return [(label, name, make, {}) for label, name, make in bad] + \
        [(label, name, make, {"may_succeed": True, **flags}) for label, name, make, flags in unusual]


def mesh_inputs(profile: Profile) -> list[tuple[str, str, Any, dict[str, Any]]]:
    def npy(array: np.ndarray) -> Any:
        return lambda p, ws: np.save(p, array)

    nan_volume = np.zeros((8, 8, 8), np.float32)
    nan_volume[2:6, 2:6, 2:6] = 1
    nan_volume[4, 4, 4] = np.nan
    one_triangle = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"
    bad = [
        ("empty-obj", "x.obj", _bytes(b"")),
        ("noise-ply", "x.ply", _bytes(NOISE)),
        ("text-named-stl", "x.stl", _bytes(TEXT)),
        ("png-named-obj", "x.obj", _base_bytes("img.png")),
        ("vertices-only", "x.obj", lambda p, ws: files.cube_obj(p, faces=False)),
        ("one-open-triangle", "x.obj", lambda p, ws: p.write_text(one_triangle)),
        ("nan-vertex", "x.obj", lambda p, ws: files.cube_obj(p, nan=True)),
        ("all-vertices-equal", "x.obj", lambda p, ws: files.cube_obj(p, scale=0.0)),
        ("declares-2g-vertices", "x.ply", lambda p, ws: files.huge_ply(p, 2_000_000_000)),
        ("declares-huge-volume", "x.npy", lambda p, ws: files.huge_npy(p, profile.side)),
        ("pickled-npy", "x.npy", lambda p, ws: files.pickled_npy(p)),
        ("flat-npy", "x.npy", npy(np.zeros(10, np.float32))),
        ("nan-volume", "x.npy", npy(nan_volume)),
        ("empty-xyz", "x.xyz", _bytes(b"")),
        ("text-xyz", "x.xyz", _bytes(TEXT)),
        ("nan-xyz", "x.xyz", lambda p, ws: p.write_text("nan 0 0 0 0 1\n" * 50)),
    ]
    unusual = [
        ("huge-coordinates", "x.obj", lambda p, ws: files.cube_obj(p, scale=1e30), {}),
        ("tiny-cube", "x.obj", lambda p, ws: files.cube_obj(p, scale=1e-9), {}),
        ("points-without-normals", "x.xyz", lambda p, ws: p.write_text("0.1 0.2 0.3\n" * 50), {}),
    ]
    return [(label, name, make, {}) for label, name, make in bad] + \
        [(label, name, make, {"may_succeed": True, **flags}) for label, name, make, flags in unusual]


def _warned(case_flags: dict[str, Any]) -> dict[str, Any]:
    """A `warns` input succeeds only with a `warning:` line on stderr."""
    flags = dict(case_flags)
    if flags.pop("warns", False):
        flags["verify"] = lambda folder, result: [] if "warning" in result.stderr.lower() else \
            ["fitted a damaged file without a warning"]
    return flags


MESH_FIT = Command("fit", lambda p: ["fit", p, "--steps", "2", "--width", "8", "--device", "cpu", "--quiet",
                                     "--no-plots", "--eval-res", "16", "--out", "out"])


def signal_cases(profile: Profile) -> list[Case]:
    everything = list(SIGNAL_COMMANDS.values())
    cases: list[Case] = []
    families = (("image", image_inputs, "run_image", everything),
                ("audio", audio_inputs, "run_audio", [SIGNAL_COMMANDS["fit"], SIGNAL_COMMANDS["fit-many"],
                                                      SIGNAL_COMMANDS["bench"]]),
                ("video", video_inputs, "run_video", [SIGNAL_COMMANDS["fit"]]),
                ("mesh", mesh_inputs, "run_mesh", [MESH_FIT]))
    for family, inputs, run, commands in families:
        for label, name, make, flags in inputs(profile):
            # damaged inputs go through every command; unusual ones through fit and eval
            chosen = commands if not flags.get("may_succeed") else commands[:1]
            if name.endswith("/"):
                name = name.rstrip("/")
            cases += through(family, label, name, make, [*chosen, eval_command(run)], **_warned(flags))
    return cases



