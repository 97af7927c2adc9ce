"""Numbers for every numeric option of every command: NaN, inf, 0, -1, huge, 23 digits, not a number.

The options are found by walking the CLI (so a new command or option is covered without editing
this file); each value is tried on a cheap command line that would otherwise succeed. A value the
option's own parser accepts (say `--lr 1e12`) may end in exit 0, but then its outputs are checked;
any other value must be refused with one line.
"""

from __future__ import annotations

from typing import Any

from .cases import Case
from .workspace import FIT, Profile

DIGITS_23 = "1" + "0" * 22
VALUES = ("nan", "inf", "-1", "0", "1e400", "x", "HUGE", DIGITS_23)
# Options whose huge value is legitimate long work (a billion steps), not a bug when it takes long.
WORK = {"--steps", "--outer-steps", "--inner-steps", "--qat-steps", "--seeds", "--chunk", "--meta-batch"}
# Text options that hold numbers, and the parser in cli/common.py that reads each.
TEXT_NUMBERS = {"--params": "parse_budget", "--size": "parse_size", "--crop": "parse_size", "--bits": "parse_bits",
                "--buffer-bits": "parse_bits", "--budget": "parse_fit_budget", "--seeds": "parse_seed"}

NO_STEPS = ["--width", "8", "--device", "cpu", "--quiet", "--no-plots", "--out", "out"]
SMALL = ["--device", "cpu", "--quiet"]


def base(command: str, option: str, profile: Profile) -> tuple[list[str], tuple[str, ...]] | None:
    """A cheap command line that succeeds, and the base files it needs; None for commands without numbers."""
    if command == "fit":
        if option in ("--frames", "--stride", "--start"):
            return ["fit", "clip.gif", *FIT, "--out", "out"], ("clip.gif",)
        if option == "--eval-res":
            return ["fit", "cube.obj", *FIT, "--out", "out"], ("cube.obj",)
        if option == "--eikonal":
            return ["fit", "ball.xyz", *FIT, "--eval-res", "16", "--out", "out"], ("ball.xyz",)
        if option == "--budget":
            return ["fit", "img.png", *NO_STEPS], ("img.png",)
        return ["fit", "img.png", *FIT, "--out", "out"], ("img.png",)
    if command == "render":
        targets = {"--rate": ("run_audio", "r.wav"), "--fps": ("run_video", "r.gif"),
                   "--frames": ("run_video", "r.gif"), "--res": ("run_mesh", "r.ply")}
        run, out = targets.get(option, ("run_image", "r.png"))
        return ["render", run, "--out", out, "--device", "cpu"], (run,)
    bases = {
        "decode": (["decode", "model.inrz", "--out", "d.png", "--device", "cpu"], ("model.inrz",)),
        "export": (["export", "run_image", "--out", "m.inrz", *SMALL], ("run_image",)),
        "rd": (["rd", "img.png", "--params", "1k", "--bits", "8", "--steps", "1", *SMALL, "--out", "rd"],
               ("img.png",)),
        "fit-many": (["fit-many", "sigs", "--steps", "1", "--width", "8", *SMALL, "--out", "fields"], ("sigs",)),
        "meta-learn": (["meta-learn", "sigs", "--outer-steps", "1", "--inner-steps", "1", "--meta-batch", "1",
                        "--width", "8", *SMALL, "--out", "init.safetensors"], ("sigs",)),
        "bench run": (["bench", "run", "-s", "img.png", "-m", "siren:hidden_features=8", "--steps", "1", *SMALL,
                       "--out", "bench"], ("img.png",)),
        "compress": (["compress", "img.png", "--steps", "2", "--qat-steps", "1", "--device", "cpu", "--quiet",
                      "--out", "c.inrz"], ("img.png",)),
    }
    return bases.get(command)


def huge(option: str, param: Any, profile: Profile) -> str:
    """A value far past any sensible size for this option, scaled to the profile's sample limit."""
    fps = "1e5" if profile.env else "1e9"
    default = str(10**12) if _annotation(param) is int else "1e12"
    return {"--scale": profile.scale, "--rate": profile.rate, "--frames": profile.frames, "--size": profile.size,
            "--crop": profile.size, "--fps": fps, "--budget": "seconds=1e300"}.get(option, default)


def numeric_options() -> list[tuple[str, Any]]:
    """(command path, click parameter) for every option that holds a number."""
    import typer

    from inrkit.cli import app, common

    parsers = {getattr(common, n) for n in ("positive", "non_negative", "fraction", "factor") if hasattr(common, n)}
    found = []
    root = typer.main.get_command(app)
    for name, command in sorted(root.commands.items()):
        leaves = getattr(command, "commands", None) or {None: command}
        for sub, leaf in sorted(leaves.items(), key=lambda kv: kv[0] or ""):
            path = " ".join(filter(None, [name, sub]))
            for param in leaf.params:
                if param.param_type_name != "option" or getattr(param, "is_flag", False):
                    continue
                flag = max(param.opts, key=len)
                numeric = _annotation(param) in (int, float) or flag in TEXT_NUMBERS or \
                    getattr(getattr(param, "type", None), "func", None) in parsers
                if numeric:
                    found.append((path, param))
    return found


def accepted(param: Any, flag: str, value: str) -> bool:
    """Does the option's own parser take `value`? (Then the command may go on and succeed.)"""
    from inrkit.cli import common

    try:
        if flag in TEXT_NUMBERS and _annotation(param) is str:
            getattr(common, TEXT_NUMBERS[flag])(value)
        elif hasattr(param, "get_runtime_param"):  # typer >= 0.2x validates through a pydantic adapter
            param.get_runtime_param().adapter.validate_python(value)
        else:
            param.type.convert(value, param, None)
    except Exception:
        return False
    return True


def _annotation(param: Any) -> Any:
    """The Python type an option converts to (int, float, str, ...)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        return descriptor.annotation
    return {"integer": int, "float": float, "text": str}.get(getattr(getattr(param, "type", None), "name", ""), None)


def _budget_value(value: str) -> str:
    return value if "=" in value or value == "x" else f"steps={value}"


def number_cases(profile: Profile) -> list[Case]:
    cases = []
    for command, param in numeric_options():
        flag = max(param.opts, key=len)
        start = base(command, flag, profile)
        if start is None:
            argv, needs = command.split(), ()
        else:
            argv, needs = start
        for raw in VALUES:
            if raw == "HUGE" and flag in WORK:
                continue
            value = huge(flag, param, profile) if raw == "HUGE" else raw
            if flag == "--budget":
                value = _budget_value(value)
            ok = start is not None and accepted(param, flag, value)
            cases.append(Case(f"number/{command}/{flag}={value}", [*argv, flag, value], needs=needs, may_succeed=ok,
                              costly=ok))
    return cases
