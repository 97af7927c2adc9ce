"""Every command x every bad option: exit 2, one line on stderr, no traceback; defaults shown in --help."""

from __future__ import annotations

import re
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from inrkit.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "400", "TERMINAL_WIDTH": "400"}


@pytest.fixture(scope="module")
def img(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "tiny.png"
    y, x = np.mgrid[0:16, 0:16] / 15.0
    iio.imwrite(path, (np.stack([x, y, x * y], -1) * 255).astype(np.uint8))
    return path


@pytest.fixture(scope="module")
def run(img: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "r"
    res = runner.invoke(app, ["fit", str(img), "--steps", "2", "--width", "8", "--device", "cpu", "--out", str(out),
                              "--quiet", "--no-plots"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["export", str(out), "--out", str(out / "m.inrz"), "--quiet"])
    assert res.exit_code == 0, res.output
    return out


BAD = [
    # fit: options of other kinds, bad numbers, bad sizes
    (["fit", "{img}", "--frames", "3"], "--frames applies to video"),
    (["fit", "{img}", "--eval-res", "64"], "--eval-res applies to"),
    (["fit", "{img}", "--eikonal", "1"], "--eikonal applies to"),
    (["fit", "{img}", "--normalize"], "--normalize applies to"),
    (["fit", "{img}", "--stride", "2"], "--stride applies to"),
    (["fit", "{img}", "--width", "0"], "--width"),
    (["fit", "{img}", "--layers", "-1"], "--layers"),
    (["fit", "{img}", "--params", "inf"], "--params"),
    (["fit", "{img}", "--params", "nan"], "cannot read"),
    (["fit", "{img}", "--params", "-5"], "--params must be a positive count"),
    (["fit", "{img}", "--lr", "nan"], "--lr"),
    (["fit", "{img}", "--targets", "percentile"], "unknown targets 'percentile'; choose from range, minmax"),
    (["fit", "{img}", "--lr", "-1"], "--lr"),
    (["fit", "{img}", "--lr-decay", "inf"], "--lr-decay"),
    (["fit", "{img}", "--target-psnr", "nan"], "--target-psnr"),
    (["fit", "{img}", "--eikonal", "-1"], "--eikonal"),
    (["fit", "{img}", "--steps", "abc"], "--steps"),
    (["fit", "{img}", "--seed", "-1"], "--seed"),
    (["fit", "{img}", "--size", "2x3x4"], "write it as N or HxW"),
    (["fit", "{img}", "--size", "abc"], "cannot read --size"),
    (["fit", "{img}", "--crop", "0"], "--crop must be positive"),
    (["fit", "{img}", "--budget", "minutes=3"], "cannot read --budget"),
    (["fit", "{img}", "--budget", "seconds=inf"], "--budget seconds must be positive"),
    (["fit", "{img}", "--budget", "seconds=5", "--steps", "10"], "not both"),
    (["fit", "{img}", "--recipe", "quick"], "unknown recipe"),
    (["fit", "{img}", "--precision", "fp8"], "unknown precision"),
    (["fit", "{img}", "--sampler", "greedy"], "unknown sampler"),
    (["fit", "{img}", "--threads", "0"], "--threads"),
    (["fit", "{img}", "--kind", "nope"], "unknown signal kind"),
    (["fit", "{img}", "--scale", "2"], "No such option"),
    (["fit", "{img}", "--resume", "--no-checkpoint"], "--resume needs the checkpoint"),
    # render: options of other kinds, bad numbers
    (["render", "{run}", "--rate", "100"], "--rate applies to audio"),
    (["render", "{run}", "--fps", "10"], "--fps applies to"),
    (["render", "{run}", "--frames", "3"], "--frames applies to"),
    (["render", "{run}", "--res", "64"], "--res applies to"),
    (["render", "{run}", "--scale", "nan"], "--scale"),
    (["render", "{run}", "--scale", "-2"], "--scale"),
    (["render", "{run}", "--scale", "inf"], "--scale"),
    (["render", "{run}", "--rate", "-1"], "--rate"),
    (["render", "{run}", "--fps", "nan"], "--fps"),
    (["render", "{run}", "--size", "0x4"], "--size must be positive"),
    # eval
    (["eval", "{run}", "{tmp}/missing.png"], "no such file"),
    (["eval", "{run}", "{img}", "--kind", "nope"], "unknown signal kind"),
    (["eval", "{run}", "{img}", "--bogus"], "No such option"),
    # models
    (["models", "zzz"], "nearest"),
    (["models", "--bogus"], "No such option"),
    # export
    (["export", "{run}", "--bits", "1"], "--bits must be an integer from 2 to 16"),
    (["export", "{run}", "--bits", "x"], "--bits"),
    (["export", "{run}", "--buffer-bits", "99"], "--buffer-bits"),
    (["export", "{run}", "--prune", "1.5"], "--prune"),
    (["export", "{run}", "--prune", "nan"], "--prune"),
    (["export", "{run}", "--qat-steps", "-1"], "--qat-steps"),
    (["export", "{run}", "--qat-lr", "0"], "--qat-lr"),
    (["export", "{run}", "--device", "nope"], "unknown device"),
    # decode
    (["decode", "{run}/m.inrz", "--scale", "inf"], "--scale"),
    (["decode", "{tmp}/missing.inrz"], "missing.inrz"),
    (["decode", "{run}/m.inrz", "--device", "nope"], "unknown device"),
    # rd
    (["rd", "{img}", "--bits", "fp16"], "integer bit widths"),
    (["rd", "{img}", "--bits", "1"], "--bits"),
    (["rd", "{img}", "--params", "inf"], "--params"),
    (["rd", "{img}", "--params", ","], "at least one"),
    (["rd", "{img}", "--steps", "0"], "--steps"),
    (["rd", "{img}", "--crop", "abc"], "cannot read --crop"),
    (["rd", "{img}", "--size", "1x2x3"], "--size"),
    (["rd", "{img}", "--lr", "nan"], "--lr"),
    (["rd", "{img}", "--seed", "-1"], "--seed"),
    (["rd", "{img}", "--device", "nope"], "unknown device"),
    # bench
    (["bench", "reprot", "{tmp}"], "no command 'reprot'; did you mean 'report'?"),
    (["bench", "-s", "{img}", "--steps", "0"], "--steps"),
    (["bench", "-s", "{img}", "--workers", "0"], "--workers"),
    (["bench", "-s", "{img}", "--crop", "0"], "--crop"),
    (["bench", "-s", "{img}", "--target-psnr", "nan"], "--target-psnr"),
    (["bench", "-s", "{img}", "--params", "-1"], "--params"),
    (["bench", "report", "{tmp}"], "is it a benchmark folder"),
    (["nosuchcommand"], "No such command"),
    # numbers past any meaning: 64-bit seeds and counts, parameter and output limits, ranges in the parser
    (["fit", "{img}", "--seed", "12345678901234567890123"], "--seed"),
    (["fit", "{img}", "--steps", "99999999999999999999999"], "--steps"),
    (["fit", "{img}", "--params", "1e12"], "over the limit"),
    (["fit", "{img}", "--budget", "steps=1e30"], "--budget steps must be positive and at most"),
    (["fit", "{img}", "--lr-decay", "2"], "--lr-decay"),
    (["fit", "{img}", "--threads", "100000"], "--threads"),
    (["fit", "{img}", "--layers", "100000"], "--layers"),
    (["fit", "{img}", "--size", "100000x100000"], "over the limit"),
    (["fit-many", "{tmp}", "--seed", "12345678901234567890123"], "--seed"),
    (["fit-many", "{tmp}", "--width", "0"], "--width"),
    (["meta-learn", "{tmp}", "--width", "0"], "--width"),
    (["meta-learn", "{tmp}", "--layers", "-1"], "--layers"),
    (["meta-learn", "{tmp}", "--inner-lr", "nan"], "--inner-lr"),
    (["meta-learn", "{tmp}", "--outer-lr", "2"], "--outer-lr"),
    (["meta-learn", "{tmp}", "--outer-steps", "0"], "--outer-steps"),
    (["meta-learn", "{tmp}", "--seed", "-1"], "--seed"),
    (["meta-learn", "{tmp}", "--params", "1e12"], "over the limit"),
    (["render", "{run}", "--res", "0"], "--res"),
    (["render", "{run}", "--size", "100000x100000"], "over the limit"),
    (["export", "{run}", "--qat-steps", "99999999999999999999999"], "--qat-steps"),
    (["rd", "{img}", "--params", "2k,1e12"], "over the limit"),
    (["bench", "-s", "{img}", "--seeds", "12345678901234567890123"], "--seeds must be from 0"),
    (["bench", "-s", "{img}", "--seeds", "0,x"], "cannot read --seeds"),
    (["bench", "-s", "{img}", "--workers", "100000"], "--workers"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_option_is_one_line_and_exit_2(args: list[str], message: str, img: Path, run: Path,
                                           tmp_path: Path) -> None:
    argv = [a.format(img=img, run=run, tmp=tmp_path) for a in args]
    res = runner.invoke(app, argv)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.stdout == "", res.stdout
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert message in lines[0], lines[0]


def _commands() -> dict[str, object]:
    root = typer.main.get_command(app)
    found = {}
    for name, command in root.commands.items():
        subcommands = getattr(command, "commands", None)
        for sub, leaf in (subcommands or {None: command}).items():
            found[" ".join(filter(None, [name, sub]))] = leaf
    return found


def _expected_defaults(command: object) -> list[str]:
    expected = []
    for param in command.params:
        if getattr(param, "is_flag", False) or param.name == "help" or param.param_type_name != "option":
            continue
        if isinstance(param.show_default, str):
            expected.append(f"[default: ({param.show_default})]")
        elif param.default is not None:
            expected.append(f"[default: {param.default}]")
        else:
            expected.append(f"{param.opts[0]}: NO DEFAULT SHOWN")  # every option must document its default
    return expected


@pytest.mark.parametrize("command", sorted(_commands()))
def test_every_default_shows_in_help(command: str) -> None:
    leaf = _commands()[command]
    res = runner.invoke(app, [*command.split(), "--help"], env=WIDE)
    assert res.exit_code == 0, res.output
    text = re.sub(r"\s+", " ", res.stdout.replace("│", " "))
    for default in _expected_defaults(leaf):
        assert default in text, f"{command}: {default} missing from --help"


def test_documented_defaults_that_used_to_vanish() -> None:
    res = runner.invoke(app, ["fit", "--help"], env=WIDE)
    text = re.sub(r"\s+", " ", res.stdout.replace("│", " "))
    for phrase in ("[default: (the backbone's recipe)]", "[default: (from the file suffix)]",
                   "[default: (runs/<signal>-<model>-<time>)]", "[default: (128)]"):
        assert phrase in text


def test_version_and_completion() -> None:
    from inrkit._version import __version__

    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"inrkit {__version__}"
    assert "--install-completion" in runner.invoke(app, ["--help"], env=WIDE).stdout


def test_library_refuses_the_numbers_the_cli_refuses() -> None:
    from inrkit import FitConfig, create_model
    from inrkit.errors import ConfigError, ModelError

    for bad in ({"seed": 2**64}, {"seed": -1}, {"lr": float("inf")}, {"lr": float("nan")},
                {"target_psnr": float("inf")}):
        with pytest.raises(ConfigError):
            FitConfig(**bad)
    for bad in ({"hidden_features": 0}, {"hidden_features": -1}, {"hidden_layers": -1}, {"hidden_layers": 10**9},
                {"hidden_features": 10**7}, {"hidden_features": 10**12}, {"params": 10**12}):
        with pytest.raises(ModelError):
            create_model("siren", 2, 3, **bad)
