"""Weights files, rendering and (later) compressed files."""

from .checkpoint import load, read_metadata, save
from .render import render, write_reconstruction

__all__ = ["load", "read_metadata", "render", "save", "write_reconstruction"]
