"""Write the exploration notebooks (sources only; execute them to store outputs).

    .venv/bin/python notebooks/build.py && INRKIT_NB_STEPS=300 .venv/bin/python notebooks/build.py --execute

Each notebook reads INRKIT_NB_STEPS (the tests set a small number) and uses only inrkit's public API.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SETUP = '''import os, tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

import inrkit

STEPS = int(os.environ.get("INRKIT_NB_STEPS", {steps}))
torch.set_num_threads(max(1, os.cpu_count() or 1))
work = Path(tempfile.mkdtemp())
plt.rcParams["figure.dpi"] = 60  # small stored PNGs
'''


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(text.strip())


def code(text: str) -> nbformat.NotebookNode:
    return new_code_cell(text.strip())


def signal_kinds() -> list:
    return [
        md("""# A tour of signal kinds

inrkit fits the same kinds of networks to sounds, clips and 3-D shapes: only the coordinates change
(time; time × rows × columns; x, y, z). This notebook makes a small example of each, fits SIREN and
looks at what came back. Set `INRKIT_NB_STEPS` for longer fits."""),
        code(SETUP.format(steps=300)),
        md("## Audio: waveform and spectrogram\n\nA two-tone chirp, written as a WAV file and loaded like any recording."),
        code('''import soundfile as sf

rate = 8000
t = np.arange(4000) / rate
wave = 0.6 * np.sin(2 * np.pi * (200 + 900 * t) * t) + 0.2 * np.sin(2 * np.pi * 1500 * t)
sf.write(work / "chirp.wav", wave, rate)
audio = inrkit.load_signal(work / "chirp.wav")
torch.manual_seed(0)
fit = inrkit.fit(inrkit.create_model("siren", signal=audio), audio, inrkit.FitConfig(steps=STEPS, progress=False))
heard = inrkit.render(fit.model)[:, 0]
print(audio.shape, {k: round(v, 2) for k, v in fit.metrics.items() if isinstance(v, float)})'''),
        code('''fig, axes = plt.subplots(2, 2, figsize=(11, 5), sharex="col")
for row, (y, name) in enumerate([(audio.values[:, 0].numpy(), "original"), (heard, "SIREN")]):
    axes[row, 0].plot(t, y, lw=0.5)
    axes[row, 0].set(ylabel=f"{name}\\namplitude")
    axes[row, 1].specgram(y, Fs=rate, NFFT=256, noverlap=192, cmap="magma")
    axes[row, 1].set(ylabel="frequency (Hz)")
axes[1, 0].set(xlabel="time (s)"); axes[1, 1].set(xlabel="time (s)")
axes[0, 0].set_title("waveform"); axes[0, 1].set_title("spectrogram")
fig.suptitle(f"chirp.wav, SIREN {STEPS} steps: SNR {fit.metrics['snr']:.1f} dB"); fig.tight_layout()'''),
        md("## Video: frames\n\nA bright square crossing a 32×32 frame, saved as a GIF (GIFs need no extra package)."),
        code('''import imageio.v3 as iio

frames = np.zeros((8, 32, 32, 3), np.uint8)
for k in range(8):
    frames[k, 10:20, 2 + 3 * k:12 + 3 * k] = (255, 180, 40)
    frames[k, :, :, 2] = 60
iio.imwrite(work / "square.gif", frames, duration=100, loop=0)
clip = inrkit.load_signal(work / "square.gif")
torch.manual_seed(0)
vfit = inrkit.fit(inrkit.create_model("siren", signal=clip, hidden_features=64), clip,
                  inrkit.FitConfig(steps=STEPS, progress=False))
movie = inrkit.render(vfit.model)
print(clip.shape, f"PSNR {vfit.metrics['psnr']:.2f} dB")'''),
        code('''fig, axes = plt.subplots(2, 4, figsize=(9, 4.6))
for col, k in enumerate([0, 2, 5, 7]):
    axes[0, col].imshow(clip.values[k].numpy()); axes[0, col].set_title(f"frame {k}")
    axes[1, col].imshow(np.clip(movie[k], 0, 1))
for ax in axes.flat:
    ax.axis("off")
axes[0, 0].text(-4, 16, "original", rotation=90, va="center"); axes[1, 0].text(-4, 16, "SIREN", rotation=90, va="center")
fig.suptitle(f"square.gif, SIREN 64 wide: PSNR {vfit.metrics['psnr']:.1f} dB over 8 frames"); fig.tight_layout()'''),
        md("""## A shape: slices and mesh

An occupancy field of a torus. Training points are drawn near the surface and labelled by winding
numbers (libigl where installed); the field is then cut into slices and turned back into a mesh."""),
        code('''import trimesh

trimesh.creation.torus(major_radius=0.6, minor_radius=0.25).export(work / "torus.ply")
torus = inrkit.load_signal(work / "torus.ply", "occupancy", eval_res=32)
torch.manual_seed(0)
sfit = inrkit.fit(inrkit.create_model("siren", signal=torus, hidden_features=32), torus,
                  inrkit.FitConfig(steps=max(STEPS, 100), progress=False))  # a surface needs ~100 steps
field = inrkit.render(sfit.model, res=48)[..., 0]
print(f"IoU at 32³: {sfit.metrics['iou']:.3f}")'''),
        code('''fig, axes = plt.subplots(1, 3, figsize=(11, 3.6))
for axis, ax in enumerate(axes):
    im = ax.imshow(np.take(field, 24, axis=axis).T, origin="lower", extent=(-1, 1, -1, 1), vmin=0, vmax=1)
    ax.contour(np.linspace(-1, 1, 48), np.linspace(-1, 1, 48), np.take(field, 24, axis=axis).T, [0.5], colors="w")
    ax.set_title(f"slice {'xyz'[axis]} = 0")
fig.colorbar(im, ax=axes, label="occupancy (SIREN)")
fig.suptitle(f"torus.ply, occupancy fitted by SIREN: IoU {sfit.metrics['iou']:.3f}")'''),
        code('''inrkit.write_reconstruction(inrkit.render(sfit.model, res=48), sfit.signal_info, work / "torus_fit.ply")
mesh = trimesh.load(work / "torus_fit.ply")
ax = plt.figure(figsize=(5, 4)).add_subplot(projection="3d")
ax.plot_trisurf(*mesh.vertices.T, triangles=mesh.faces, cmap="viridis", linewidth=0)
ax.set_title(f"marching cubes of the fit: {len(mesh.faces)} faces"); ax.set_box_aspect((1, 1, 0.5))'''),
    ]


def frequency() -> list:
    return [
        md("""# Backbones and frequency

Plain ReLU networks learn low frequencies first (spectral bias); Fourier features (FFN) and sine
activations (SIREN) reach fine detail far sooner. Here three backbones fit the same 64×64 crop
while we watch the error's spectrum, then SIREN renders the crop at 4× its resolution."""),
        code(SETUP.format(steps=300)),
        code('''signal = inrkit.load_signal("../data/astronaut.png", crop=64)
target = signal.values.numpy().mean(-1)


def radial_spectrum(img):
    """Mean |FFT| per integer radius: energy at each spatial frequency (cycles per 64 px)."""
    power = np.abs(np.fft.fftshift(np.fft.fft2(img - img.mean())))
    y, x = np.indices(img.shape) - np.array(img.shape)[:, None, None] // 2
    r = np.hypot(y, x).astype(int)
    return np.bincount(r.ravel(), power.ravel()) / np.bincount(r.ravel())


snapshots, results = {}, {}
for name in ["relu_pe", "ffn", "siren"]:
    torch.manual_seed(0)
    model = inrkit.create_model(name, signal=signal)
    marks = sorted({max(1, STEPS // 10), max(1, STEPS // 3), STEPS})
    shots = snapshots[name] = {}

    def watch(row, model=model, shots=shots, marks=marks):
        if int(row["step"]) in marks:
            shots[int(row["step"])] = inrkit.render(model).mean(-1)

    results[name] = inrkit.fit(model, signal, inrkit.FitConfig(steps=STEPS, log_every=1, progress=False),
                               callback=watch)
    print(f"{name:8s} PSNR {results[name].metrics['psnr']:.2f} dB")'''),
        md("## The error's spectrum as training goes on\n\nLower is better; the right end is the finest detail."),
        code('''fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
for ax, (name, shots) in zip(axes, snapshots.items()):
    for step, img in sorted(shots.items()):
        ax.semilogy(radial_spectrum(img - target)[:33], label=f"step {step}")
    ax.semilogy(radial_spectrum(target)[:33], "k--", lw=0.8, label="the image itself")
    ax.set(title=f"{name}: |FFT| of the error", xlabel="spatial frequency (cycles per 64 px)")
    ax.grid(alpha=0.3)
axes[0].set_ylabel("mean |FFT| (grey levels)")
axes[-1].legend(fontsize=8)
fig.suptitle("astronaut 64×64 crop: what each backbone learns first"); fig.tight_layout()'''),
        code('''fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
axes[0].imshow(target, cmap="gray", vmin=0, vmax=1); axes[0].set_title("original (grey)")
for ax, (name, res) in zip(axes[1:], results.items()):
    ax.imshow(inrkit.render(res.model).mean(-1), cmap="gray", vmin=0, vmax=1)
    ax.set_title(f"{name}: PSNR {res.metrics['psnr']:.1f} dB")
for ax in axes:
    ax.axis("off")
fig.suptitle(f"reconstructions after {STEPS} steps"); fig.tight_layout()'''),
        md("## Super-resolution by rendering\n\nThe fit is a function of continuous coordinates: render it on a 4× finer grid."),
        code('''from PIL import Image

big = inrkit.render(results["siren"].model, scale=4)
bicubic = np.asarray(Image.fromarray((signal.values.numpy() * 255).astype(np.uint8)).resize((256, 256),
                     Image.BICUBIC)) / 255
fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
for ax, img, title in zip(axes, [signal.values.numpy(), bicubic, big],
                          ["64×64 original", "bicubic to 256×256", "SIREN rendered at 256×256"]):
    ax.imshow(np.clip(img, 0, 1), interpolation="nearest"); ax.set_title(title); ax.axis("off")
fig.suptitle("astronaut crop, 4× upsampling"); fig.tight_layout()'''),
    ]


def bench_explorer() -> list:
    return [
        md("""# Exploring benchmark results

`inrkit bench` (or `inrkit.run_benchmark`) writes every finished case into `results.sqlite`. This
notebook runs a tiny benchmark, loads the store into pandas (plain dicts if pandas is missing),
filters it and plots it. Point `STORE` at your own benchmark folder to explore real results."""),
        code(SETUP.format(steps=300)),
        code('''from inrkit.bench import ResultStore

spec = {"signals": ["../data/astronaut.png", "../data/camera64.png"], "models": ["siren", "ffn", "relu_pe"],
        "seeds": [0], "steps": STEPS, "params": 5000, "device": "cpu", "out": str(work / "bench")}
run = inrkit.run_benchmark(spec, progress=False)
STORE = run.out
rows = ResultStore(STORE).rows(status="ok")
print(len(rows), "cases; one row's fields:", sorted(rows[0]))'''),
        code('''try:
    import pandas as pd
except ImportError:
    pd = None

flat = [{"signal": r["signal_name"], "model": r["model"], "params": r["params"], "seconds": r["seconds"],
         "commit": (r["versions"].get("git") or {}).get("commit", "")[:8], **r["metrics"]} for r in rows]
if pd is not None:
    table = pd.DataFrame(flat)
    display(table.round(3))
else:
    for row in flat:
        print(row)'''),
        md("## Filter and compare\n\nThe mean per model, and only the grey image."),
        code('''if pd is not None:
    display(table.groupby("model")[["psnr", "ssim", "seconds"]].mean().round(3))
    grey = table[table.signal == "camera64"]
else:
    grey = [r for r in flat if r["signal"] == "camera64"]
grey'''),
        code('''fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for r in rows:
    history = np.array([h[:4] for h in r["history"]], dtype=float)
    axes[0].plot(history[:, 0], history[:, 2], label=f"{r['model']} / {r['signal_name']}")
axes[0].set(xlabel="step", ylabel="PSNR (dB)", title="training curves"); axes[0].legend(fontsize=7)
models = sorted({r["model"] for r in rows})
for i, signal in enumerate(sorted({r["signal_name"] for r in rows})):
    scores = [next(r["metrics"]["psnr"] for r in rows if r["model"] == m and r["signal_name"] == signal) for m in models]
    axes[1].bar(np.arange(len(models)) + 0.4 * i, scores, width=0.4, label=signal)
axes[1].set_xticks(np.arange(len(models)) + 0.2, models)
axes[1].set(ylabel="PSNR (dB)", title=f"final PSNR at 5k parameters, {STEPS} steps"); axes[1].legend(fontsize=8)
fig.tight_layout()'''),
    ]


def compression() -> list:
    return [
        md("""# Compression: rate–distortion and what quantisation does

A fitted network *is* the compressed image: `inrkit.compress` quantises its weights to a bit width,
entropy-codes them into an `.inrz` file, and bits per pixel come from that file's size. This
notebook fits SIREN once, stores it at several bit widths and several sizes, and looks at what is lost."""),
        code(SETUP.format(steps=300)),
        code('''signal = inrkit.load_signal("../data/astronaut.png")
fits = {}
for params in (3000, 8000):
    torch.manual_seed(0)
    model = inrkit.create_model("siren", signal=signal, params=params)
    fits[params] = inrkit.fit(model, signal, inrkit.FitConfig(steps=STEPS, progress=False))
    print(f"{params:>5} params: float PSNR {fits[params].metrics['psnr']:.2f} dB")'''),
        code('''curve = {}
for params, result in fits.items():
    for bits in (4, 6, 8, 10, 12):
        stats = inrkit.compress(result.model, work / f"siren-{params}-{bits}.inrz", bits=bits, signal=signal)
        curve.setdefault(params, []).append((bits, stats.bpp, stats.metrics["psnr"]))
fig, ax = plt.subplots(figsize=(6.5, 4.2))
for params, points in curve.items():
    bits, bpp, db = zip(*points)
    ax.plot(bpp, db, "o-", label=f"SIREN {params:,} params")
    for b, x, y in points:
        ax.annotate(f"{b} bit", (x, y), fontsize=7, xytext=(3, -9), textcoords="offset points")
    ax.axhline(fits[params].metrics["psnr"], ls=":", lw=0.8, color=ax.lines[-1].get_color())
ax.set(xlabel="bits per pixel (from the .inrz file size)", ylabel="PSNR (dB, RGB)",
       title="astronaut 128×128: rate–distortion (dotted: float model)")
ax.grid(alpha=0.3); ax.legend(fontsize=8)'''),
        md("## What quantisation does to a fit\n\nThe weights snap to a grid of 2^bits levels; too few levels and the error grows everywhere."),
        code('''model = fits[8000].model
weights = torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()
fig, axes = plt.subplots(1, 4, figsize=(14, 3.4))
axes[0].hist(weights, bins=120, color="grey")
axes[0].set(title="SIREN 8k: weight values", xlabel="weight", ylabel="count")
for ax, bits in zip(axes[1:], (4, 6, 10)):
    small = inrkit.decompress(work / f"siren-8000-{bits}.inrz")
    img = inrkit.render(small)
    ax.imshow(np.clip(img, 0, 1)); ax.axis("off")
    ax.set_title(f"{bits} bit: {inrkit.psnr(img, signal.values.numpy(), 1.0):.1f} dB")
fig.tight_layout()'''),
    ]


SLOW = {"bench_explorer"}  # over ~30 s at 15 steps on a busy 2-core machine (65 s measured)
NOTEBOOKS = {"signal_kinds": signal_kinds, "backbones_frequency": frequency, "bench_explorer": bench_explorer,
             "compression": compression}


def build(name: str) -> Path:
    nb = new_notebook(cells=NOTEBOOKS[name]())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if name in SLOW:
        nb.metadata["inrkit"] = {"slow": True}  # tests/test_notebooks.py runs it only with -m slow
    path = HERE / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def execute(path: Path) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    nbformat.write(nb, path)


if __name__ == "__main__":
    only = [a for a in sys.argv[1:] if not a.startswith("--")] or list(NOTEBOOKS)
    for name in only:
        path = build(name)
        if "--execute" in sys.argv:
            os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
            execute(path)
        print(path)
