"""Optional extras: the core fits an image with no extra installed; a missing extra is one line naming
the pip install to run (exit 2 from the CLI); `import inrkit` imports no optional package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from inrkit.errors import InrkitError, MissingDependency
from inrkit.utils import require

OPTIONAL = ("av", "trimesh", "scipy", "skimage", "constriction", "OpenEXR", "igl", "tensorboard", "pandas", "ray")
# None in sys.modules makes `import av` raise ImportError and find_spec("av") answer None: as if not installed.
BLOCK = f"import sys\nsys.modules.update(dict.fromkeys({OPTIONAL!r}))\n"


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    script = BLOCK + f"sys.argv = ['inrkit', *{args!r}]\nfrom inrkit.cli import main\nmain()\n"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_import_inrkit_imports_no_optional_package() -> None:
    code = ("import sys, inrkit, inrkit.cli, inrkit.runs, inrkit.bench; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({OPTIONAL!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_core_alone_fits_an_image_and_a_video_gives_the_one_line_hint(tmp_path: Path) -> None:
    y, x = np.mgrid[0:16, 0:16] / 15.0
    iio.imwrite(tmp_path / "img.png", (np.stack([x, y, x * y], -1) * 255).astype(np.uint8))
    fitted = _cli(["fit", "img.png", "--steps", "2", "--width", "8", "--device", "cpu", "--out", "run", "--quiet"],
                  tmp_path)
    assert fitted.returncode == 0, fitted.stderr
    assert (tmp_path / "run" / "comparison.png").exists() and (tmp_path / "run" / "metrics.json").exists()
    (tmp_path / "clip.mp4").write_bytes(b"\0" * 64)
    video = _cli(["fit", "clip.mp4", "--steps", "2", "--device", "cpu", "--quiet"], tmp_path)
    assert video.returncode == 2
    assert video.stderr.strip().splitlines()[-1].endswith("video needs PyAV: pip install 'inrkit[video]'")
    assert len(video.stderr.strip().splitlines()) == 1 and "Traceback" not in video.stderr


@pytest.mark.parametrize(("module", "extra", "call"), [
    ("trimesh", "shapes", lambda p: __import__("inrkit").load_signal(p / "x.obj", "sdf")),
    ("constriction", "compress", lambda p: __import__("inrkit.export.entropy", fromlist=["x"]).encode_symbols(
        np.arange(50) % 3, bits=8)),
    ("OpenEXR", "exr", lambda p: __import__("inrkit").load_signal(p / "x.exr")),
])
def test_each_missing_extra_names_its_install(module: str, extra: str, call, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "x.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n")
    (tmp_path / "x.exr").write_bytes(b"\0" * 16)
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError
    with pytest.raises(MissingDependency) as info:
        call(tmp_path)
    assert str(info.value).endswith(f"pip install 'inrkit[{extra}]'") and "\n" not in str(info.value)
    assert isinstance(info.value, InrkitError)  # so the CLI prints it as one line and exits 2


def test_require_returns_the_module_when_present() -> None:
    assert require("numpy", extra="core") is np
