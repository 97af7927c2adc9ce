"""Hostile or huge signal files, and render/eval outputs that would be huge or wrong: one line, exit 2, no work.

Every file is made here, tiny, in tmp_path: a PNG declaring 12000×12000 pixels over a few KB, a WAV
named .png, a WAV cut short, a silent WAV, headers declaring huge meshes and volumes.
"""

from __future__ import annotations

import math
import struct
import time
import zlib
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from typer.testing import CliRunner

from inrkit import create_model, load_signal
from inrkit.cli import app
from inrkit.errors import ConfigError, InrkitError, ModelError, SignalError
from inrkit.inference import check_output, evaluate, render
from inrkit.signals import SignalInfo, predict_grid
from inrkit.signals.audio import evaluate_audio
from inrkit.signals.shape import render_shape
from inrkit.signals.shape_size import check_mesh_size

runner = CliRunner()
FIT = ["--steps", "2", "--width", "8", "--device", "cpu", "--quiet", "--no-plots"]


def one_line_exit_2(args: list[str], message: str, env: dict[str, str] | None = None) -> str:
    """Run the CLI and check it ends with exit 2 and exactly one error line containing `message`."""
    res = runner.invoke(app, [str(a) for a in args], env=env)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message in lines[0], lines[0]
    return lines[0]


def bomb_png(path: Path, width: int = 12000, height: int = 12000) -> Path:
    """A valid-looking grey PNG declaring width × height pixels, with only a few rows of zeros stored."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = zlib.compress(b"\x00" * (width + 1) * 64, 9)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def tone(path: Path, n: int = 8000, rate: int = 8000) -> Path:
    sf.write(path, 0.5 * np.sin(np.arange(n) / 10), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny fitted image, audio and video runs."""
    root = tmp_path_factory.mktemp("runs")
    y, x = np.mgrid[0:16, 0:16] / 15.0
    iio.imwrite(root / "img.png", (np.stack([x, y, x * y], -1) * 255).astype(np.uint8))
    tone(root / "clip.wav", n=400)
    iio.imwrite(root / "clip.gif", (np.random.default_rng(0).random((3, 8, 8, 3)) * 255).astype(np.uint8),
                duration=100, loop=0)
    out = {}
    for name, source in (("image", "img.png"), ("audio", "clip.wav"), ("video", "clip.gif")):
        res = runner.invoke(app, ["fit", str(root / source), *FIT, "--out", str(root / name)])
        assert res.exit_code == 0, res.output
        out[name] = root / name
    return out


# ---- inputs: bombs, checked from the header before decoding ----------------------------------

def test_png_bomb_is_refused_from_its_header_in_under_a_second(tmp_path: Path) -> None:
    path = bomb_png(tmp_path / "bomb.png")
    assert path.stat().st_size < 200_000
    start = time.perf_counter()
    with pytest.raises(SignalError, match="12000×12000 = 144,000,000 samples, over the limit") as info:
        load_signal(path)
    assert time.perf_counter() - start < 1.0
    assert "INRKIT_MAX_SAMPLES" in str(info.value)
    one_line_exit_2(["fit", path, *FIT, "--out", tmp_path / "run"], "12000×12000")
    assert not (tmp_path / "run").exists()


def test_the_limit_has_an_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "small.png"
    iio.imwrite(path, np.zeros((16, 16), np.uint8))
    monkeypatch.setenv("INRKIT_MAX_SAMPLES", "100")
    with pytest.raises(SignalError, match="16×16 = 256 samples, over the limit of 100"):
        load_signal(path)
    monkeypatch.setenv("INRKIT_MAX_SAMPLES", "256")
    assert load_signal(path).shape == (16, 16)


def test_pillows_own_bomb_check_gives_way_to_inrkits(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow refuses past 2 × MAX_IMAGE_PIXELS with its own error; inrkit's limit (with an override) decides."""
    from PIL import Image

    path = tmp_path / "img.png"
    iio.imwrite(path, np.zeros((16, 16), np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50)  # 256 pixels: Pillow alone would raise its bomb error
    assert load_signal(path).shape == (16, 16)
    assert Image.MAX_IMAGE_PIXELS == 50  # restored afterwards


def test_long_audio_is_refused_from_its_header(tmp_path: Path) -> None:
    path = tone(tmp_path / "long.wav")
    one_line_exit_2(["fit", path, *FIT, "--out", tmp_path / "run"], "8000 = 8,000 samples, over the limit of 1,000",
                    env={"INRKIT_MAX_SAMPLES": "1000"})


def test_video_is_refused_from_its_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "clip.gif"
    iio.imwrite(path, np.zeros((10, 32, 48, 3), np.uint8) + np.arange(10)[:, None, None, None].astype(np.uint8),
                duration=100, loop=0)
    monkeypatch.setenv("INRKIT_MAX_SAMPLES", "10000")
    with pytest.raises(SignalError, match=r"the video \(frames × height × width kept\) is 10×32×48"):
        load_signal(path)
    assert load_signal(path, frames=2, size="16x24").shape == (2, 16, 24)  # what is kept counts
    one_line_exit_2(["fit", path, *FIT, "--out", tmp_path / "run"], "10×32×48 = 15,360 samples",
                    env={"INRKIT_MAX_SAMPLES": "10000"})


def test_huge_mesh_headers_are_refused_before_parsing(tmp_path: Path) -> None:
    ply = tmp_path / "huge.ply"
    ply.write_text("ply\nformat binary_little_endian 1.0\nelement vertex 100000000\nproperty float x\n"
                   "property float y\nproperty float z\nelement face 200000000\n"
                   "property list uchar int vertex_indices\nend_header\n")
    with pytest.raises(SignalError, match=r"the mesh \(vertices \+ faces its header declares\) is 300000000"):
        check_mesh_size(ply)
    one_line_exit_2(["fit", ply, *FIT, "--out", tmp_path / "run"], "300,000,000 samples, over the limit")
    obj = tmp_path / "box.obj"
    obj.write_text("".join(f"v {i} {i % 3} {i % 5}\n" for i in range(40)) + "f 1 2 3\n" * 30)
    assert check_mesh_size(obj) == 70


def test_huge_volume_header_is_refused_before_loading(tmp_path: Path) -> None:
    path = tmp_path / "vol.npy"
    with open(path, "wb") as f:  # the header of a 4 GB float32 volume, and no data
        np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (1000,) * 3})
    one_line_exit_2(["fit", path, *FIT, "--kind", "sdf", "--out", tmp_path / "run"],
                    "the volume is 1000×1000×1000 = 1,000,000,000 samples")


# ---- inputs: content that is not what the name says -------------------------------------------

def test_wav_named_png_says_what_it_is(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(tone(tmp_path / "t.wav").read_bytes())
    one_line_exit_2(["fit", path, *FIT], "this is a WAV file, not a PNG (rename it to .wav)")


def test_text_named_png_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("shopping list: eggs, milk\n")
    one_line_exit_2(["fit", path, *FIT], "not an image ('shopping list")


def test_png_named_wav_and_empty_files(tmp_path: Path) -> None:
    path = tmp_path / "song.wav"
    iio.imwrite(path, np.zeros((8, 8), np.uint8), extension=".png")
    one_line_exit_2(["fit", path, *FIT], "this is a PNG file, not a WAV (rename it to .png)")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    one_line_exit_2(["fit", empty, *FIT], "the file is empty")
    mesh = tmp_path / "bunny.ply"
    mesh.write_bytes(tone(tmp_path / "t.wav").read_bytes())
    one_line_exit_2(["fit", mesh, *FIT], "this is a WAV file, not a PLY (rename it to .wav)")


def test_truncated_wav_names_both_counts(tmp_path: Path) -> None:
    whole = tone(tmp_path / "whole.wav").read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(whole[:44 + 3989 * 2])
    one_line_exit_2(["fit", path, *FIT, "--out", tmp_path / "run"],
                    "the header declares 8,000 frames but only 3,989 are present (the file is truncated)")
    assert not (tmp_path / "run").exists()


def test_silent_wav_is_refused_and_leaves_no_folder(tmp_path: Path) -> None:
    """A silent clip has nothing to learn and no SNR: almost always the wrong file, so say so."""
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(8000), 8000, subtype="PCM_16")
    one_line_exit_2(["fit", path, *FIT, "--out", tmp_path / "run"], "the clip is silent (all 8,000 samples are 0)")
    assert not (tmp_path / "run").exists()


def test_snr_of_a_silent_target_is_minus_infinity_not_a_crash() -> None:
    signal = load_signal(np.zeros((64, 1), np.float32), kind="audio")
    metrics = evaluate_audio(lambda q: torch.full((len(q), 1), 0.1), signal)
    assert metrics["snr"] == -math.inf and math.isfinite(metrics["psnr"])


# ---- outputs: sizes checked before anything is allocated ---------------------------------------

@pytest.mark.parametrize("kind, args, message", [
    ("image", ["--scale", "1000"], "the rendered image is 16000×16000 = 256,000,000 samples, over the limit"),
    ("image", ["--size", "100000x100000"], "100000×100000 = 10,000,000,000 samples, over the limit"),
    ("audio", ["--rate", "1e12"], "the rendered clip is 50000000000 = 50,000,000,000 samples"),
    ("video", ["--frames", "10000000"], "the rendered video is 10000000×8×8 = 640,000,000 samples"),
    ("video", ["--scale", "5000"], "the rendered video is 3×40000×40000"),
    ("image", ["--out", "{tmp}/x.xyz"], "cannot be written as '.xyz'; use one of .png"),
    ("image", ["--out", "{tmp}/missing/x.png"], "does not exist"),
    ("image", ["--out", "{tmp}"], "is a folder; name the file to write"),
    ("image", ["--out", "/proc/x.png"], "cannot write there"),
    ("audio", ["--out", "{tmp}/x.png"], "an audio reconstruction cannot be written as '.png'; use one of .wav"),
])
def test_render_outputs_are_bounded(runs: dict[str, Path], tmp_path: Path, kind: str, args: list[str],
                                    message: str) -> None:
    before = set(runs[kind].iterdir())
    one_line_exit_2(["render", runs[kind], *[a.format(tmp=tmp_path) for a in args]], message)
    assert set(runs[kind].iterdir()) == before and list(tmp_path.iterdir()) == []


def test_render_size_on_an_image(runs: dict[str, Path], tmp_path: Path) -> None:
    for size, shape in (("24x40", (24, 40, 3)), ("20", (20, 20, 3))):
        res = runner.invoke(app, ["render", str(runs["image"]), "--size", size, "--out", str(tmp_path / "r.png")])
        assert res.exit_code == 0, res.output
        assert iio.imread(tmp_path / "r.png").shape == shape


def test_library_render_checks_sizes_and_factors(runs: dict[str, Path]) -> None:
    from inrkit.export import load

    model = load(runs["image"])
    for options, message in (({"scale": 1000}, "over the limit"), ({"scale": float("nan")}, "finite number above 0"),
                             ({"scale": float("inf")}, "finite number above 0"), ({"size": (0, 5)}, "invalid shape")):
        with pytest.raises(ConfigError, match=message):
            render(model, **options)
    with pytest.raises(ConfigError, match="the predicted grid is 70000×70000"):
        predict_grid(lambda q: q[:, :1], (70000, 70000))
    audio = load(runs["audio"])
    with pytest.raises(ConfigError, match="rate must be a finite number"):
        render(audio, rate=float("nan"))
    assert render(audio, size=(123,)).shape == (123, 1)


def test_shape_resolutions_zero_are_errors_not_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    info = SignalInfo("sdf", (32, 32, 32), 1, (-1.0, 1.0), {"render_res": 32})
    field = lambda q: q.norm(dim=1, keepdim=True) - 0.5  # noqa: E731
    monkeypatch.setenv("INRKIT_MAX_SAMPLES", str(2**24))  # the default admits 512³, the finest grid
    for res, message in ((0, "from 8 to 512, got 0"), (600, "got 600"), (512, "the res grid is 512×512×512")):
        with pytest.raises(SignalError, match=message):
            render_shape(field, info, res=res)
    assert render_shape(field, info).shape == (32, 32, 32, 1)
    ply = tmp_path / "ball.ply"
    import trimesh

    trimesh.creation.icosphere(subdivisions=1).export(ply)
    one_line_exit_2(["fit", ply, *FIT, "--eval-res", "0"], "eval-res must be an integer from 8 to 512, got 0")


def test_check_output_names_the_writable_suffixes() -> None:
    with pytest.raises(ConfigError, match=r"a video reconstruction cannot be written as '.webm'; use one of .mp4"):
        check_output("x.webm", "video")
    assert check_output("x.GIF", "video").name == "x.GIF"


# ---- outputs: a model that computes NaN is refused, not rendered black ------------------------

def weights_filled(run: Path, path: Path, value: float) -> Path:
    """The run's weights file with every tensor set to `value` (its metadata kept)."""
    with safe_open(str(run / "model.safetensors"), "pt") as f:
        tensors = {k: torch.full_like(f.get_tensor(k), value) for k in f.keys()}
        metadata = f.metadata()
    save_file(tensors, str(path), metadata=metadata)
    return path


def test_non_finite_models_are_refused_by_render_and_eval(runs: dict[str, Path], tmp_path: Path) -> None:
    """NaN weights are refused on loading; finite weights whose output overflows, by render and eval."""
    signal = runs["image"].parent / "img.png"
    nan = weights_filled(runs["image"], tmp_path / "nan.safetensors", float("nan"))
    one_line_exit_2(["render", nan, "--out", tmp_path / "x.png"], "NaN or infinite")
    huge = weights_filled(runs["image"], tmp_path / "huge.safetensors", 3e38)  # finite, but the output overflows
    one_line_exit_2(["render", huge, "--out", tmp_path / "x.png"], "the model's output is not finite")
    one_line_exit_2(["eval", huge, signal], "the model's output is not finite")
    assert not (tmp_path / "x.png").exists()


def test_library_evaluate_refuses_non_finite_output(tmp_path: Path) -> None:
    signal = load_signal(np.full((8, 8, 3), 0.5, np.float32))
    model = create_model("siren", signal=signal, hidden_features=8)
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    for call in (lambda: evaluate(model, signal), lambda: render(model)):
        with pytest.raises(ModelError, match="not finite"):
            call()
    assert issubclass(ModelError, InrkitError)
