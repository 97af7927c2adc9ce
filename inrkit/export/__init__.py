"""Weights files, rendering and compressed .inrz files."""

from .weights import load, read_metadata, save
from .compress import CompressStats, compress, decompress

__all__ = ["CompressStats", "compress", "decompress", "load", "read_metadata", "render", "save", "write_reconstruction"]
