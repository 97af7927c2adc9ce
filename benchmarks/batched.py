"""fit_many vs a sequential loop of `fit`: members/s, time per member and peak memory; meta-learned init.

Every measurement runs in its own child process (so peak RSS / CUDA peak memory belong to it alone),
and the two arms of a ratio run one after the other in the same invocation, so a shared machine's
load hits both alike. Crops are cut from ../shared/data images by path (nothing is copied).

    python benchmarks/batched.py speed                       # the issue's two CPU settings + 1..256 sweep
    python benchmarks/batched.py speed --device cuda --members 64,512 --loop-members 8   # on a GPU
    python benchmarks/batched.py meta                        # learned init vs random, steps to 30 dB
    python benchmarks/batched.py report                      # results/batched.json -> results/batched.md
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("INRKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "batched.json"
SETTINGS = {  # name: (crop side, hidden_features, hidden_layers)
    "A": (32, 32, 3),
    "B": (64, 64, 3),
}


def crops(folder: Path, n: int, side: int, seed: int) -> list:
    """n crops side x side, cycling over the folder's images at seeded random positions."""
    import imageio.v3 as iio
    import inrkit

    paths = sorted(folder.glob("*.png"))
    rng, out = np.random.default_rng(seed), []
    images = [iio.imread(p)[..., :3] for p in paths]
    for i in range(n):
        img = images[i % len(images)]
        y, x = rng.integers(0, img.shape[0] - side), rng.integers(0, img.shape[1] - side)
        out.append(inrkit.load_signal((img[y:y + side, x:x + side] / 255.0).astype(np.float32)))
    return out


def one(mode: str, setting: str, members: int, steps: int, device: str, threads: int) -> dict:
    """One measurement in this process: `members` fits of the setting, batched or as a loop."""
    import torch

    import inrkit

    torch.set_num_threads(threads)
    side, width, layers = SETTINGS[setting]
    signals = crops(DATA / "kodak", members, side, seed=0)

    def factory(sig):
        return inrkit.create_model("siren", signal=sig, hidden_features=width, hidden_layers=layers)

    config = inrkit.FitConfig(steps=steps, device=device, progress=False)
    start = time.perf_counter()
    if mode == "batched":
        results = [m.result for m in inrkit.fit_many(signals, factory, config)]
    else:
        results = []
        for i, sig in enumerate(signals):
            torch.manual_seed(i)
            results.append(inrkit.fit(factory(sig), sig, inrkit.FitConfig(steps=steps, device=device, seed=i,
                                                                           progress=False)))
    wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return {"mode": mode, "setting": setting, "members": members, "steps": steps, "device": device,
            "wall_s": wall, "per_member_s": wall / members, "members_per_s": members / wall,
            "train_s": sum(r.seconds for r in results) if mode == "loop" else results[0].seconds,
            "psnr": float(np.mean([r.metrics["psnr"] for r in results])),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cuda_peak_mib": peak}


def child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "one", *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed(args: argparse.Namespace) -> list[dict]:
    rows = [child("baseline", "A", "0", "1", args.device, str(args.threads))] if args.device == "cpu" else []
    plan = [("A", m) for m in args.members] + [("B", 16)] * (args.device == "cpu")
    for setting, members in plan:
        loop_n = min(members, args.loop_members)
        for mode, n in (("loop", loop_n), ("batched", members)):
            row = child(mode, setting, str(n), str(args.steps), args.device, str(args.threads))
            row["for_members"] = members
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def meta(args: argparse.Namespace) -> dict:
    """Learn on DIV2K train crops, then fit held-back Kodak crops to 30 dB from random and learned inits."""
    import torch

    import inrkit
    from inrkit.meta import MetaConfig, meta_learn

    torch.set_num_threads(args.threads)
    side, width, layers = SETTINGS["A"]
    train = crops(DATA / "images" / "finer_div2k" / "train_data", args.train, side, seed=0)
    test = crops(DATA / "kodak", args.test, side, seed=1)

    def factory(sig):
        return inrkit.create_model("siren", signal=sig, hidden_features=width, hidden_layers=layers)

    mc = MetaConfig(outer_steps=args.outer, inner_steps=args.inner, inner_lr=args.lr, meta_batch=8,
                    device=args.device, progress=False)
    start = time.perf_counter()
    init = meta_learn(train, factory, mc)
    learn_s = time.perf_counter() - start
    cfg = inrkit.FitConfig(steps=args.max_steps, lr=args.lr, target_psnr=30.0, device=args.device, progress=False)
    out = {"train_crops": len(train), "test_crops": len(test), "lr": args.lr, "meta": vars(mc), "learn_s": learn_s}
    for name, how in (("random", "random"), ("learned", init)):
        members = inrkit.fit_many(test, factory, cfg, init=how)
        out[name] = {"steps": [m.result.steps for m in members],
                     "reached": sum(m.status == "target" for m in members)}
    out["ratio_mean_steps"] = float(np.mean(out["random"]["steps"]) / np.mean(out["learned"]["steps"]))
    out["ratio_median_steps"] = float(np.median(out["random"]["steps"]) / np.median(out["learned"]["steps"]))
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["speed", "meta", "one", "report"])
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--members", type=lambda s: [int(v) for v in s.split(",")], default=[1, 4, 16, 64, 256])
    parser.add_argument("--loop-members", type=int, default=16, help="loop fits timed (per-member time is flat)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--train", type=int, default=128)
    parser.add_argument("--test", type=int, default=16)
    parser.add_argument("--outer", type=int, default=150)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--max-steps", type=int, default=2000)
    args = parser.parse_args()
    if args.what == "one":
        mode, setting, members, steps, device, threads = args.rest
        if mode == "baseline":
            import inrkit  # noqa: F401  (the memory of an idle process with torch and inrkit loaded)

            print(json.dumps({"mode": "baseline", "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
            return
        print(json.dumps(one(mode, setting, int(members), int(steps), device, int(threads))))
        return
    store = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.what == "speed":
        store[f"speed_{args.device}"] = speed(args)
    elif args.what == "meta":
        store["meta"] = meta(args)
    RESULTS.write_text(json.dumps(store, indent=1))


if __name__ == "__main__":
    main()
