"""fit_many vs a sequential loop of `fit`: members/s, time per member and peak memory; meta-learned init.

Every measurement runs in its own child process (so peak RSS / CUDA peak memory belong to it alone),
and the two arms of a ratio run one after the other in the same invocation, so a shared machine's
load hits both alike. Crops are cut from ../shared/data images by path (nothing is copied).

    python benchmarks/batched.py speed --repeats 2 --compile     # A at 64 and 256 members, B at 16: interleaved
    python benchmarks/batched.py speed --device cuda --members 64,512 --loop-members 8   # on a GPU
    python benchmarks/batched.py engines --threads 1             # stacked vs vmap per backbone (auto's pick)
    python benchmarks/batched.py direct --members 64 --repeats 5  # SIREN's autograd-free step vs autograd
    python benchmarks/batched.py profile --members 64           # where one fit_many step of A spends its time
    python benchmarks/batched.py meta --threads 1            # learned init vs random, steps to 30 dB (5.5 min)
    python benchmarks/batched.py report                      # results/batched.json -> median tables
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("INRKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "batched.json"
ENGINE: list[str] = []  # ["vmap"] to time the fallback engine instead of "auto"
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


def one(mode: str, setting: str, members: int, steps: int, device: str, threads: int, engine: str = "auto") -> dict:
    """One measurement in this process: `members` fits of the setting, batched or as a loop ("+compile":
    through torch.compile; its time includes compiling, from inductor's on-disk cache after the first run)."""
    import torch

    import inrkit

    torch.set_num_threads(threads)
    side, width, layers = SETTINGS[setting]
    signals = crops(DATA / "kodak", members, side, seed=0)

    def factory(sig):
        return inrkit.create_model("siren", signal=sig, hidden_features=width, hidden_layers=layers)

    compile_ = mode.endswith("+compile")
    config = inrkit.FitConfig(steps=steps, device=device, compile=compile_, progress=False)
    # once per process, in either arm: torch imports its compiler with the first optimizer (~1 s on CPU)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])
    if mode == "batched-autograd":  # every step through autograd, as before the autograd-free SIREN step
        from inrkit.stacked import StackedMembers

        StackedMembers.find_body = lambda self, probe, members: None
    start, used = time.perf_counter(), None
    if mode.startswith("batched"):
        fitted = inrkit.fit_many(signals, factory, config, engine=engine)
        results, used = [m.result for m in fitted], fitted[0].engine
    else:
        results = []
        for i, sig in enumerate(signals):
            torch.manual_seed(i)
            results.append(inrkit.fit(factory(sig), sig, replace(config, seed=i)))
    wall = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return {"mode": mode, "setting": setting, "members": members, "steps": steps, "device": device, "engine": used,
            "wall_s": wall, "per_member_s": wall / members, "members_per_s": members / wall,
            "train_s": sum(r.seconds for r in results) if mode.startswith("loop") else results[0].seconds,
            "psnr": float(np.mean([r.metrics["psnr"] for r in results])),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cuda_peak_mib": peak}


def child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "one", *args, *ENGINE], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def speed(args: argparse.Namespace) -> list[dict]:
    """Interleaved repeats (loop, batched, loop, batched, ...) of every setting, so load hits both arms alike."""
    rows = [child("baseline", "A", "0", "1", args.device, str(args.threads))] if args.device == "cpu" else []
    plan = [("A", m) for m in args.members] + [("B", 16)] * (args.device == "cpu" and args.setting_b)
    for rep in range(args.repeats):
        for setting, members in plan:
            loop_n = min(members, args.loop_members if setting == "A" else members)
            arms = ("loop", "batched") + (("loop+compile", "batched+compile") if args.compile else ())
            for mode in arms:
                n = loop_n if mode.startswith("loop") else members
                row = child(mode, setting, str(n), str(args.steps), args.device, str(args.threads))
                row.update(for_members=members, rep=rep)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print(summary(rows), flush=True)
    return rows


def summary(rows: list[dict]) -> str:
    """Medians over repeats as a markdown table: time per member of each arm and its speed-up over the loop."""
    import statistics

    keys = sorted({(r["setting"], r["for_members"]) for r in rows if "for_members" in r})
    lines = ["| setting | members | arm | s/member | vs loop (per repeat) | vs loop+compile | engine | repeats |",
             "|---|---:|---|---:|---:|---:|---|---:|"]
    for setting, members in keys:
        arms: dict[str, list[dict]] = {}
        for r in rows:
            if r.get("for_members") == members and r["setting"] == setting:
                arms.setdefault(r["mode"], []).append(r)
        median = {mode: statistics.median(r["per_member_s"] for r in rs) for mode, rs in arms.items()}
        for mode, rs in arms.items():
            each = ", ".join(f"{a['per_member_s'] / b['per_member_s']:.2f}" for a, b in zip(arms["loop"], rs))
            versus = f"{median['loop+compile'] / median[mode]:.2f}x" if "loop+compile" in median else "-"
            lines.append(f"| {setting} | {members} | {mode} | {median[mode]:.3f} | "
                         f"{median['loop'] / median[mode]:.2f}x ({each}) | {versus} | {rs[0].get('engine') or '-'} | "
                         f"{len(rs)} |")
    return "\n".join(lines)


def engines(args: argparse.Namespace) -> list[dict]:
    """Per backbone: one optimisation step of 16 stacked members vs the same under vmap (interleaved repeats)."""
    import statistics

    import torch

    import inrkit
    from inrkit.inference import OutputMap
    from inrkit.members import build_members, member_losses

    torch.set_num_threads(args.threads)
    signals, rows = crops(DATA / "kodak", 16, 32, seed=0), []
    for name in args.models:
        nets = []
        for i, sig in enumerate(signals):
            torch.manual_seed(i)
            nets.append(inrkit.create_model(name, signal=sig, hidden_features=32, hidden_layers=2))
            nets[-1].init_from_signal(sig)
        out_map, coords = OutputMap.of(nets[0], signals[0].info), signals[0].coords()
        targets = torch.stack([out_map.to_model(s.targets()) for s in signals])
        auto = build_members(nets, coords[:64]).kind
        times: dict[str, list[float]] = {"stacked": [], "vmap": []}
        for _ in range(args.repeats):
            for engine in times:
                try:
                    part = build_members(nets, coords[:64], engine).parts[0]
                except ValueError:
                    continue
                optimizer = torch.optim.Adam(list(part.params.values()), lr=1e-4)
                for step in range(12):  # 2 warm-up steps, 10 timed
                    if step == 2:
                        start = time.perf_counter()
                    losses = member_losses(part.forward(coords, len(nets)), targets, nets[0].model_info.loss)
                    optimizer.zero_grad(set_to_none=True)
                    losses.sum().backward()
                    optimizer.step()
                times[engine].append((time.perf_counter() - start) / 10 / len(nets) * 1e3)
        row = {"model": name, "auto": auto, **{f"{k}_ms_per_member_step": statistics.median(v) if v else None
                                                for k, v in times.items()}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def direct(args: argparse.Namespace) -> list[dict]:
    """Setting A at `--members`: fit_many with the autograd-free SIREN step against every step through
    autograd, in interleaved child processes; medians of the training time."""
    import statistics

    rows = []
    for rep in range(args.repeats):
        for mode in ("batched-autograd", "batched"):
            row = child(mode, "A", str(args.members[0]), str(args.steps), args.device, str(args.threads))
            rows.append({**row, "rep": rep})
            print(json.dumps(rows[-1]), flush=True)
    arms = ("batched-autograd", "batched")
    median = {m: statistics.median(r["train_s"] for r in rows if r["mode"] == m) for m in arms}
    print(f"training s, median of {args.repeats}: autograd {median['batched-autograd']:.2f}, "
          f"autograd-free {median['batched']:.2f} ({median['batched-autograd'] / median['batched']:.2f}x)")
    return rows


def profile(args: argparse.Namespace) -> list[dict]:
    """One fit_many step of setting A at `--members`, by operator and input shape (torch.profiler's self
    time per step over 20 steps after 20 warm-up steps; CPU time, and CUDA time on a GPU), beside the
    step's wall time."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    import inrkit
    from inrkit import batched as engine

    torch.set_num_threads(args.threads)
    side, width, layers = SETTINGS["A"]
    signals, rows = crops(DATA / "kodak", args.members[0], side, seed=0), []

    on_gpu = args.device.startswith("cuda")
    activities = [ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * on_gpu

    def sync() -> None:  # a GPU runs the steps asynchronously: time them, not their launches
        if on_gpu:
            torch.cuda.synchronize()

    def self_time(event) -> float:  # microseconds where the operator ran: the GPU's on a GPU
        return getattr(event, "self_device_time_total", 0) if on_gpu else event.self_cpu_time_total

    def steps_only(stack, *_, **__) -> None:  # in place of fit_many's training loop
        coords, targets = stack.batch()
        for _ in range(20):
            stack.step(coords, targets, "mse")
        sync()
        start = time.perf_counter()
        for _ in range(20):
            stack.step(coords, targets, "mse")
        sync()
        wall = (time.perf_counter() - start) / 20 * 1e3
        with torch_profile(activities=activities, record_shapes=True) as prof:
            for _ in range(20):
                stack.step(coords, targets, "mse")
        events = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -self_time(e))
        rows.append({"op": "wall (unprofiled)", "ms_per_step": wall, "calls_per_step": 1, "shapes": ""})
        rows.extend({"op": e.key, "ms_per_step": self_time(e) / 20e3, "calls_per_step": e.count / 20,
                     "shapes": str(e.input_shapes)} for e in events[:args.top])

    engine._train = steps_only
    inrkit.fit_many(signals, lambda sig: inrkit.create_model("siren", signal=sig, hidden_features=width,
                                                             hidden_layers=layers),
                    inrkit.FitConfig(steps=300, device=args.device, progress=False))
    for row in rows:
        print(f"{row['ms_per_step']:7.3f} ms  {row['calls_per_step']:5.1f}x  {row['op']:24s} {row['shapes']}")
    return rows


def meta(args: argparse.Namespace) -> dict:
    """Learn on DIV2K train crops, then fit held-back Kodak crops to 30 dB from random and learned inits."""
    import torch

    import inrkit
    from inrkit.meta import MetaConfig, meta_learn

    torch.set_num_threads(args.threads)
    side, _, layers = SETTINGS["A"]
    width = args.width
    train = crops(DATA / "images" / "finer_div2k" / "train_data", args.train, side, seed=0)
    test = crops(DATA / "kodak", args.test, side, seed=1)

    def factory(sig):
        return inrkit.create_model("siren", signal=sig, hidden_features=width, hidden_layers=layers)

    mc = MetaConfig(outer_steps=args.outer, inner_steps=args.inner, inner_lr=args.lr, meta_batch=args.meta_batch,
                    device=args.device, progress=False)
    start = time.perf_counter()
    init = meta_learn(train, factory, mc)
    learn_s = time.perf_counter() - start
    cfg = inrkit.FitConfig(steps=args.max_steps, lr=args.lr, target_psnr=30.0, device=args.device, progress=False)
    out = {"train_crops": len(train), "test_crops": len(test), "lr": args.lr, "width": width, "meta": vars(mc),
           "learn_s": learn_s}
    for name, how in (("random", "random"), ("learned", init)):
        members = inrkit.fit_many(test, factory, cfg, init=how)
        out[name] = {"steps": [m.result.steps for m in members],
                     "reached": sum(m.status == "target" for m in members)}
    random, learned = np.array(out["random"]["steps"]), np.array(out["learned"]["steps"])
    out["ratio_mean_steps"] = float(random.mean() / learned.mean())  # total steps saved over the test crops
    out["ratio_median_steps"] = float(np.median(random) / np.median(learned))
    out["ratio_geomean_per_crop"] = float(np.exp(np.log(random / learned).mean()))
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["speed", "engines", "direct", "profile", "meta", "one", "report"])
    parser.add_argument("--models", type=lambda s: s.split(","),
                        default=["siren", "finer", "gauss", "spder", "wire", "relu_pe", "ffn", "fkan", "sl2a", "ngp"])
    parser.add_argument("rest", nargs="*")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--members", type=lambda s: [int(v) for v in s.split(",")], default=[64, 256])
    parser.add_argument("--repeats", type=int, default=2, help="interleaved loop/batched repeats (medians reported)")
    parser.add_argument("--no-setting-b", dest="setting_b", action="store_false", help="skip 16 x 64², SIREN 3x64")
    parser.add_argument("--compile", action="store_true", help="add both arms through torch.compile")
    parser.add_argument("--engine", default="auto", choices=["auto", "stacked", "vmap"])
    parser.add_argument("--loop-members", type=int, default=16, help="loop fits timed (per-member time is flat)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--label", default="", help="suffix of the results key (keeps another machine's rows)")
    parser.add_argument("--top", type=int, default=16, help="operators listed by profile")
    parser.add_argument("--train", type=int, default=128)
    parser.add_argument("--test", type=int, default=48, help="held-back Kodak crops (two per image)")
    parser.add_argument("--outer", type=int, default=150)
    parser.add_argument("--inner", type=int, default=400)
    parser.add_argument("--lr", type=float, default=1e-4, help="inner and test learning rate (SIREN's recipe)")
    parser.add_argument("--meta-batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=32, help="SIREN hidden features for meta (3 hidden layers)")
    parser.add_argument("--max-steps", type=int, default=2000)
    args = parser.parse_args()
    if args.what == "one":
        mode, setting, members, steps, device, threads, *engine = args.rest
        if mode == "baseline":
            import inrkit  # noqa: F401  (the memory of an idle process with torch and inrkit loaded)

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps({"mode": "baseline", "peak_rss_mib": peak}))
            return
        print(json.dumps(one(mode, setting, int(members), int(steps), device, int(threads), *engine)))
        return
    store = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    if args.what == "speed":
        ENGINE[:] = [args.engine]
        store[f"speed_{args.device}_{args.engine}_threads{args.threads}{args.label}"] = speed(args)
    elif args.what == "engines":
        fresh = {row["model"]: row for row in engines(args)}  # a re-run of some backbones keeps the others
        store["engines_cpu"] = [fresh.pop(r["model"], r) for r in store.get("engines_cpu", [])] + list(fresh.values())
    elif args.what == "direct":
        store[f"direct_{args.device}_threads{args.threads}{args.label}"] = direct(args)
    elif args.what == "profile":
        store[f"profile_{args.device}_threads{args.threads}{args.label}"] = profile(args)
    elif args.what == "meta":
        store["meta"] = meta(args)
    else:
        for key, rows in store.items():
            if key.startswith("speed_"):
                print(f"{key}\n{summary(rows)}")
    RESULTS.write_text(json.dumps(store, indent=1))


if __name__ == "__main__":
    main()
