"""Weights files, rendering and compressed .inrz files."""

from .compress import CompressStats, compress, decompress
from .weights import load, read_metadata, save

__all__ = ["CompressStats", "compress", "decompress", "load", "read_metadata", "render", "save", "write_reconstruction"]
