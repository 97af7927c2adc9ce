"""Compressed .inrz files: exact round trips, true sizes, quality at 16 and 6 bits, QAT, bad files, CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from inrkit import ExportError, FitConfig, compress, create_model, decompress, fit, list_models, load_signal, render
from inrkit.cli import app
from inrkit.export.allocate import allocate
from inrkit.export.entropy import decode_symbols, encode_symbols
from inrkit.export.inrz import encode
from inrkit.export.quantize import QuantSpec, affine_params, dequantize, quantize
from inrkit.models import get_entry


@pytest.fixture(scope="module")
def tiny():
    y, x = np.mgrid[0:16, 0:16] / 15.0
    sig = load_signal(np.stack([x, y, 0.5 + 0.5 * np.sin(6 * x * y)], -1).astype(np.float32))
    torch.manual_seed(0)
    result = fit(create_model("siren", signal=sig, hidden_features=16, hidden_layers=2), sig,
                 FitConfig(steps=40, lr=1e-3, device="cpu", progress=False))
    return sig, result.model


def _outputs(model: torch.nn.Module, sig) -> torch.Tensor:
    with torch.no_grad():
        return model.cpu()(sig.coords())


def test_round_trip_is_exact_and_size_is_the_file_size(tiny, tmp_path) -> None:
    sig, model = tiny
    stats = compress(model, tmp_path / "m.inrz", bits=8, signal=sig)
    decoded = decompress(tmp_path / "m.inrz")
    _, state = encode(model, QuantSpec(bits=8))
    reference = create_model("siren", signal=sig, hidden_features=16, hidden_layers=2)
    reference.load_state_dict(state)
    assert torch.equal(_outputs(decoded, sig), _outputs(reference, sig))
    w = model.state_dict()["net.1.linear.weight"]  # independent check of one tensor's dequantisation
    scale, zero = affine_params(w, 8)
    expected = dequantize(quantize(w, scale, zero, 8), scale, zero)
    assert torch.equal(decoded.state_dict()["net.1.linear.weight"], expected)
    size = (tmp_path / "m.inrz").stat().st_size
    assert stats.bytes == size and stats.bpp == pytest.approx(size * 8 / 256)
    assert stats.bits_per_param == pytest.approx(size * 8 / stats.params)
    assert render(decoded).shape == (16, 16, 3) and decoded.signal_info.shape == (16, 16)


def test_weights_stored_as_changes_from_their_seeded_init_decode_the_same_from_a_smaller_file(tiny, tmp_path) -> None:
    """A model built right after torch.manual_seed(5), then fitted: coded as changes from that init its
    file is smaller and decodes to the same numbers; another seed's init does not help, and is not used,
    nor is the right one where the header's record of it costs more than it saves (`tiny`, 643 numbers)."""
    sig, small = tiny
    torch.manual_seed(5)
    model = fit(create_model("siren", signal=sig, hidden_features=64, hidden_layers=2), sig,
                FitConfig(steps=20, device="cpu", progress=False)).model
    plain = compress(model, tmp_path / "plain.inrz", bits=8, signal=sig)
    moved = compress(model, tmp_path / "moved.inrz", bits=8, signal=sig, origin_seed=5)
    other = compress(model, tmp_path / "other.inrz", bits=8, signal=sig, origin_seed=6)
    assert moved.origin["seed"] == 5 and moved.origin["tensors"] >= 3 and moved.bytes < 0.9 * plain.bytes
    assert other.origin is None and other.bytes == plain.bytes
    assert compress(small, tmp_path / "small.inrz", bits=8, origin_seed=0).origin is None
    for a, b in zip(decompress(tmp_path / "plain.inrz").state_dict().values(),
                    decompress(tmp_path / "moved.inrz").state_dict().values()):
        assert torch.equal(a, b)
    assert moved.metrics == plain.metrics


def test_a_torch_that_draws_another_init_for_the_seed_gets_one_clear_error(tmp_path, monkeypatch) -> None:
    import inrkit.export.inrz as inrz

    torch.manual_seed(0)
    model = create_model("siren", 2, 3, hidden_features=32)
    assert compress(model, tmp_path / "m.inrz", bits=8, origin_seed=0).origin is not None
    monkeypatch.setattr(inrz, "init_crc", lambda state: 12345)  # as if this PyTorch's generator drew other numbers
    with pytest.raises(ExportError, match=r"m\.inrz: .*seed 0 draws, and this PyTorch .* draws other numbers"):
        decompress(tmp_path / "m.inrz")


def test_every_writer_refuses_a_name_that_is_not_inrz_before_any_work(tiny, tmp_path) -> None:
    from inrkit import ConfigError
    from inrkit.codec import encode_image as code_with
    from inrkit.export.latent import encode as encode_image
    from inrkit.export.search import search_compress

    _, model = tiny
    for write in (lambda path: compress(model, path, bits=8), lambda path: search_compress(model, path, max_loss=1),
                  lambda path: encode_image("data/astronaut.png", path, bpp=1),
                  lambda path: code_with("data/astronaut.png", path, bpp=1, model="siren", steps=1000)):
        with pytest.raises(ConfigError, match="this writes an .inrz file; name it e.g. .*m.inrz"):
            write(tmp_path / "m.png")
    assert list(tmp_path.iterdir()) == []


def test_16_bits_is_within_005_db_of_float(tiny, tmp_path) -> None:
    sig, model = tiny
    stats = compress(model, tmp_path / "m16.inrz", bits=16, signal=sig)
    assert abs(stats.metrics["psnr"] - stats.float_metrics["psnr"]) < 0.05
    lower = compress(model, tmp_path / "m4.inrz", bits=4, signal=sig)
    assert lower.bytes < stats.bytes and lower.metrics["psnr"] < stats.metrics["psnr"]


def test_qat_improves_6_bit_psnr(tmp_path) -> None:
    y, x = np.mgrid[0:24, 0:24] / 23.0
    sig = load_signal(np.stack([np.sin(5 * x) * 0.5 + 0.5, y, 0.5 + 0.5 * np.cos(7 * x * y)], -1).astype(np.float32))
    torch.manual_seed(0)
    model = fit(create_model("siren", signal=sig, hidden_features=24, hidden_layers=2), sig,
                FitConfig(steps=150, lr=1e-3, device="cpu", progress=False)).model
    plain = compress(model, tmp_path / "plain.inrz", bits=6, signal=sig)
    tuned = compress(model, tmp_path / "qat.inrz", bits=6, signal=sig, qat_steps=60, qat_lr=1e-4)
    assert tuned.metrics["psnr"] > plain.metrics["psnr"] + 0.3


@pytest.mark.parametrize("bits", [2, 5, 8, 12, 16])
def test_every_coder_choice_round_trips(bits: int) -> None:
    rng = np.random.default_rng(bits)
    for symbols in (rng.integers(0, 1 << bits, 500), np.full(40, 3 % (1 << bits)),
                    np.clip(rng.normal(1 << (bits - 1), 2, 3000), 0, (1 << bits) - 1).astype(int)):
        name, block = encode_symbols(symbols, bits)
        assert np.array_equal(decode_symbols(name, block, bits, len(symbols)), symbols)
    matrix = np.clip(rng.normal(1 << (bits - 1), 1.0, (40, 64)) * rng.uniform(0.1, 9, (40, 1)), 0, (1 << bits) - 1)
    name, block = encode_symbols(matrix.astype(int).ravel(), bits, rows=40)
    assert np.array_equal(decode_symbols(name, block, bits, matrix.size), matrix.astype(int).ravel())


def test_a_weight_matrix_whose_rows_and_columns_move_by_different_amounts_codes_smaller_per_row_and_column() -> None:
    rng = np.random.default_rng(0)
    spread = rng.uniform(0.5, 20, (181, 1)) * rng.uniform(0.2, 3, (1, 362))
    spread[:, :26] = 0  # inputs from units that never fire: their weights never move from the init
    changes = np.clip(np.round(128 + rng.normal(size=(181, 362)) * spread), 0, 255).astype(np.int64).ravel()
    name, block = encode_symbols(changes, 8, rows=181)
    _, flat = encode_symbols(changes, 8)  # the same symbols without their matrix shape
    assert name == "scaled" and len(block) < 0.96 * len(flat)
    assert np.array_equal(decode_symbols(name, block, 8, changes.size), changes)


def test_corrupt_truncated_and_foreign_files(tiny, tmp_path) -> None:
    sig, model = tiny
    path = tmp_path / "m.inrz"
    compress(model, path, bits=8)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    (tmp_path / "corrupt.inrz").write_bytes(bytes(data))
    with pytest.raises(ExportError, match="checksum"):
        decompress(tmp_path / "corrupt.inrz")
    (tmp_path / "short.inrz").write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ExportError, match="truncated"):
        decompress(tmp_path / "short.inrz")
    (tmp_path / "foreign.inrz").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(ExportError, match="not an .inrz"):
        decompress(tmp_path / "foreign.inrz")
    with pytest.raises(ExportError, match="no such"):
        decompress(tmp_path / "missing.inrz")
    result = CliRunner().invoke(app, ["decode", str(tmp_path / "corrupt.inrz")])
    assert result.exit_code == 2 and "checksum" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("name", list_models())
def test_every_backbone_round_trips(name: str, tmp_path) -> None:
    y, x = np.mgrid[0:8, 0:8] / 7.0
    sig = load_signal(np.stack([x, y, x * y], -1).astype(np.float32))
    torch.manual_seed(0)
    small = {get_entry(name).width_arg: 16}  # each backbone's own size argument
    config = FitConfig(steps=3, device="cpu", progress=False)
    model = fit(create_model(name, signal=sig, **small), sig, config).model.cpu()
    for bits, per_channel, prune in ((8, True, 0.2), (None, False, 0.0)):
        compress(model, tmp_path / "m.inrz", bits=bits, per_channel=per_channel, prune=prune)
        decoded = decompress(tmp_path / "m.inrz")
        reference = create_model(name, signal=sig, **small)
        reference.load_state_dict(encode(model, QuantSpec(bits, per_channel, prune))[1])
        assert torch.equal(_outputs(decoded, sig), _outputs(reference, sig))
        assert decoded.state_dict().keys() == model.state_dict().keys()  # buffers stored too
    from inrkit.export.search import layer_spec  # per-layer widths, as --max-loss / --target-bpp store them

    data, state = encode(model, layer_spec(model, 5, per_channel=True))
    decoded = decompress(_write(tmp_path / "layers.inrz", data))
    assert all(torch.equal(decoded.state_dict()[k], v) for k, v in state.items())


def test_cli_export_then_decode(tmp_path, sample_image) -> None:
    from inrkit.runs import run_fit

    sig = load_signal(sample_image, crop=16)
    _, run = run_fit(sig, "siren", out=tmp_path / "run", config=FitConfig(steps=5, device="cpu", progress=False),
                     model_options={"hidden_features": 8})
    runner = CliRunner()
    out = tmp_path / "m.inrz"
    result = runner.invoke(app, ["export", str(run), "--bits", "10", "--per-channel", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{out.stat().st_size:,}" in result.output
    assert "changes from the init of seed 0" in result.output  # the run's --seed, from its metrics.json
    result = runner.invoke(app, ["decode", str(out), "--out", str(tmp_path / "x.png"), "--scale", "2"])
    assert result.exit_code == 0, result.output
    import imageio.v3 as iio

    assert iio.imread(tmp_path / "x.png").shape[:2] == (32, 32)
    bad = runner.invoke(app, ["export", str(run), "--bits", "20"])
    assert bad.exit_code == 2 and "2 to 16" in bad.output


def _rd_image(tmp_path):
    import imageio.v3 as iio

    y, x = np.mgrid[0:16, 0:16] / 15.0
    path = tmp_path / "grad.png"
    iio.imwrite(path, (np.stack([x, y, x * y], -1) * 255).astype(np.uint8))
    return path


def test_rd_sweep_resumes_from_the_bench_store_and_keeps_the_rd_json_layout(tmp_path, monkeypatch) -> None:
    import json

    import inrkit.bench.case as bench_case
    from inrkit.bench import ResultStore
    from inrkit.bench.rd import run_rd

    image, out = _rd_image(tmp_path), tmp_path / "rd"
    fits: list[int] = []
    real_fit_case = bench_case.fit_case

    def counted(case, context):
        fits.append(case.params)
        return real_fit_case(case, context)

    monkeypatch.setattr("inrkit.bench.rd.fit_case", counted)
    args = {"model": "siren", "bits": [8, 12], "steps": 3, "lr": 1e-3, "out": out, "progress": False}
    first = run_rd([image], params=[600], **args)
    assert fits == [600] and ResultStore(out).count() == 1
    assert set(first) == {"name", "description", "protocol", "results", "pareto", "configs", "per_image", "baselines",
                          "published_kodak", "at_0.3bpp", "bd_rate_percent", "gain_db"}
    entry = first["per_image"]["grad-600"]
    assert set(entry) == {"image", "params", "steps", "seconds", "float_psnr", "bits"}
    assert set(entry["bits"]) == {"8", "12"}
    assert entry["bits"]["8"]["bytes"] == (out / "inrz" / "grad-600-8bit.inrz").stat().st_size
    assert entry["bits"]["8"]["bpp"] == pytest.approx(entry["bits"]["8"]["bytes"] * 8 / 256)

    widened = run_rd([image], params=[600, 1200], **args)  # the finished size is not fitted again
    assert fits == [600, 1200] and ResultStore(out).count() == 2
    assert widened["per_image"]["grad-600"] == entry
    bpps = [c["bpp"] for c in widened["configs"]]
    assert len(bpps) == 4 and bpps == sorted(bpps)
    assert json.loads((out / "rd.json").read_text())["protocol"]["params"] == [600, 1200]
    assert run_rd([image], params=[600, 1200], **args)["per_image"] == widened["per_image"] and len(fits) == 2


def test_cli_rd_writes_rd_json_and_a_failed_size_does_not_stop_the_sweep(tmp_path) -> None:
    import json

    image, out = _rd_image(tmp_path), tmp_path / "rd"
    result = CliRunner().invoke(app, ["rd", str(image), "--params", "10,600", "--bits", "8", "--steps", "2",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    rd = json.loads((out / "rd.json").read_text())
    assert list(rd["per_image"]) == ["grad-600"] and (out / "rd.png").stat().st_size > 0


def test_per_layer_widths_are_stored_per_tensor(tiny, tmp_path) -> None:
    sig, model = tiny
    spec = QuantSpec(bits=4, layer_bits=(("net.0.linear.weight", 9),))
    data, state = encode(model, spec)
    from inrkit.export.inrz import parse

    header = parse(data)[0]
    names = list(model.state_dict())
    widths = {name: entry[2] for name, entry in zip(names, header["tensors"])}
    assert widths["net.0.linear.weight"] == 9 and widths["net.1.linear.weight"] == 4
    decoded = decompress(_write(tmp_path / "l.inrz", data))
    assert torch.equal(decoded.state_dict()["net.0.linear.weight"], state["net.0.linear.weight"])


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_max_loss_search_keeps_the_loss_and_shrinks_the_file(tiny, tmp_path) -> None:
    from inrkit.export.search import search_compress

    sig, model = tiny
    full = compress(model, tmp_path / "16.inrz", bits=16, signal=sig)
    found = search_compress(model, tmp_path / "s.inrz", max_loss=0.3, signal=sig, qat_steps=10, max_qat_runs=1)
    assert found.float_metrics["psnr"] - found.metrics["psnr"] <= 0.3
    assert found.bytes == (tmp_path / "s.inrz").stat().st_size < full.bytes
    assert decompress(tmp_path / "s.inrz").state_dict().keys() == model.state_dict().keys()


def test_target_bpp_search_stays_under_the_target_or_names_the_nearest(tiny, tmp_path) -> None:
    from inrkit.export.search import search_compress

    sig, model = tiny
    eight = compress(model, tmp_path / "8.inrz", bits=8, signal=sig)
    found = search_compress(model, tmp_path / "t.inrz", target_bpp=eight.bpp * 0.8, signal=sig, qat_steps=5,
                            max_qat_runs=1)
    assert found.bpp <= eight.bpp * 0.8 and (tmp_path / "t.inrz").stat().st_size == found.bytes
    with pytest.raises(ExportError, match="nearest: .* bpp"):
        search_compress(model, tmp_path / "none.inrz", target_bpp=0.01, signal=sig, qat_steps=0)
    assert not (tmp_path / "none.inrz").exists()


def test_cli_export_targets_refuse_bad_combinations(tiny, tmp_path) -> None:
    from inrkit import save

    sig, model = tiny
    save(model, tmp_path / "m.safetensors")
    from PIL import Image

    pixels = np.asarray(sig.values).reshape(16, 16, 3)
    Image.fromarray(np.round(np.clip(pixels, 0, 1) * 255).astype(np.uint8)).save(tmp_path / "sig.png")
    runner = CliRunner()
    both = runner.invoke(app, ["export", str(tmp_path / "m.safetensors"), "--bits", "8", "--max-loss", "0.1"])
    assert both.exit_code == 2 and "one of --bits, --max-loss and --target-bpp" in both.output
    out = tmp_path / "x.inrz"
    low = runner.invoke(app, ["export", str(tmp_path / "m.safetensors"), "--target-bpp", "0.01", "--qat-steps", "0",
                              "--signal", str(tmp_path / "sig.png"), "--out", str(out), "--quiet"])
    assert low.exit_code == 2 and "nearest" in low.output and len(low.output.strip().splitlines()) == 1
    assert not out.exists()


def test_allocated_widths_spend_bits_where_rounding_hurts(tiny, tmp_path) -> None:
    from inrkit.export.allocate import allocate, allocated_spec, sensitivity_table
    from inrkit.export.compress import measure

    sig, model = tiny
    base, table = sensitivity_table(model, sig, per_channel=False)
    budget = base * (10 ** (0.2 / 10) - 1)  # the MSE a 0.2 dB loss allows
    widths = allocate(table, budget)
    assert sum(table[n][b][0] for n, b in widths.items()) <= budget  # the prediction keeps the budget
    spec = allocated_spec(widths, per_channel=False)
    data, _ = encode(model, spec)
    stats = measure(model, data, spec, sig)
    loss = compress(model, tmp_path / "16.inrz", bits=16, signal=sig).metrics["psnr"] - stats.metrics["psnr"]
    assert loss <= 0.3  # measured for real: sensitivities add up nearly independently
    assert stats.bytes < len(encode(model, QuantSpec(bits=16))[0])
    assert len(set(widths.values())) > 1  # not one width for all


def test_the_search_bisects_only_settings_that_no_smaller_setting_beats() -> None:
    from types import SimpleNamespace

    from inrkit.export.search import Probe, _front

    def probe(size: int, psnr: float) -> Probe:
        stats = SimpleNamespace(bytes=size, float_metrics={"psnr": 40.0}, metrics={"psnr": psnr})
        return Probe(spec=None, qat=False, stats=stats, model=None)

    probes = [probe(300, 39.0), probe(100, 30.0), probe(200, 28.0), probe(400, 39.5), probe(250, 35.0)]
    front = _front(probes)
    assert [(p.stats.bytes, p.loss) for p in front] == [(100, 10.0), (250, 5.0), (300, 1.0), (400, 0.5)]


def test_the_bpp_search_fine_tunes_only_settings_that_no_smaller_setting_beats(monkeypatch) -> None:
    from types import SimpleNamespace

    from inrkit.export import search

    def probe(size: int, psnr: float, qat: bool = False) -> search.Probe:
        stats = SimpleNamespace(bytes=size, bpp=size / 100, float_metrics={"psnr": 40.0}, metrics={"psnr": psnr})
        return search.Probe(spec=size, qat=qat, stats=stats, model=None)

    # 290 is larger than 280 but rounds worse: no fine-tuning run for it; 500 is over the 3 bpp target
    monkeypatch.setattr(search, "_ptq", lambda model, prune, run: [probe(280, 36.0), probe(500, 39.0)])
    monkeypatch.setattr(search, "_allocated", lambda model, rises, run: [probe(290, 33.0), probe(200, 30.0)])
    tuned = []

    def fine_tune(model, spec, qat_steps, **run):
        tuned.append(spec)
        return probe(spec, 37.0 + spec / 1000, qat=True)

    monkeypatch.setattr(search, "_probe", fine_tune)
    best = search._best_under(None, 3.0, qat_steps=10, max_runs=2, run={})
    assert tuned == [280, 200]
    assert (best.stats.bytes, best.qat) == (280, True)


def test_an_allocation_does_not_spend_leftover_budget_on_a_far_worse_trade() -> None:
    # one step of the large tensor fits; its next does not, and the small tensor's step would fit but
    # costs 9x the MSE per byte saved (WIRE's first-layer bias: 43 % more MSE for 88 bytes)
    table = {"hidden": {8: (0.0, 8000), 7: (1.0, 7000), 6: (5.0, 6000)}, "first.bias": {16: (0.0, 300), 12: (0.9, 200)}}
    assert allocate(table, budget=3.0) == {"hidden": 7, "first.bias": 16}
    assert allocate(table, budget=5.5) == {"hidden": 6, "first.bias": 16}
    assert allocate(table, budget=6.0) == {"hidden": 6, "first.bias": 12}  # no better trade left
