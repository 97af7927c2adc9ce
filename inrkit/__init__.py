"""inrkit: fit implicit neural representations to images, audio, video and 3-D shapes.

Example:
    >>> import inrkit
    >>> signal = inrkit.load_signal("data/astronaut.png", crop=16)
    >>> model = inrkit.create_model("siren", signal=signal)
    >>> result = inrkit.fit(model, signal, inrkit.FitConfig(steps=50, progress=False))
    >>> result.metrics["psnr"] > 30
    True
    >>> inrkit.render(result.model, scale=2).shape
    (32, 32, 3)
"""

from ._version import __version__
from .batched import Member, fit_many
from .bench import run_benchmark
from .errors import ConfigError, ExportError, InrkitError, ModelError, SignalError
from .export import compress, decompress, load, save
from .fields import NeuralFieldDataset, save_fields
from .fit import FitConfig, FitDiverged, FitResult, fit
from .inference import evaluate, predictor, render, write_reconstruction
from .many import run_fit_many
from .metrics import psnr, snr, ssim
from .models import create_model, list_models
from .runs import run_fit
from .signals import Signal, SignalInfo, load_signal

__all__ = [
    "ConfigError", "ExportError", "FitConfig", "FitDiverged", "FitResult", "InrkitError", "ModelError", "Signal",
    "SignalError", "SignalInfo", "__version__", "compress", "create_model", "decompress", "evaluate", "fit",
    "list_models", "load", "load_signal", "predictor", "psnr", "render", "run_benchmark", "run_fit", "save", "snr",
    "ssim", "write_reconstruction",
    "Member", "NeuralFieldDataset", "fit_many", "run_fit_many", "save_fields",
]
