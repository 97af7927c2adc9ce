"""The bad-input corpus: bad or unusual inputs of every kind, each paired with the commands it goes through.

One implementation for the parametrised test (`tests/test_corpus.py`, in-process) and the long run
(`benchmarks/fuzz.py`, subprocesses under a timeout and an address-space limit):

    >>> from corpus import IN_PROCESS, all_cases
    >>> len(all_cases(IN_PROCESS)) >= 254
    True

Families: signal files of every kind (image, audio, video, mesh), weights files, .inrz files with
foreign headers and recomputed checksums, numbers for every numeric option, paths, bench specs and
stores, and --resume with foreign or damaged checkpoints. `run.classify` says what each case did.
"""

from .cases import Case, all_cases
from .run import OUTCOMES, Verdict, run_case
from .workspace import IN_PROCESS, SUBPROCESS, Profile, Workspace

__all__ = ["IN_PROCESS", "OUTCOMES", "SUBPROCESS", "Case", "Profile", "Verdict", "Workspace", "all_cases",
           "run_case"]
