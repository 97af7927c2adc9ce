"""Weights files, rendering and compressed .inrz files."""

from .checkpoint import load, read_metadata, save
from .compress import CompressStats, compress, decompress
from .render import render, write_reconstruction

__all__ = ["CompressStats", "compress", "decompress", "load", "read_metadata", "render", "save", "write_reconstruction"]
