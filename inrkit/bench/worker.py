"""Child process of an isolated case: reads the case as JSON on stdin, prints progress and its row.

Protocol on stdout: `@@step N` lines while fitting, then one `@@row {json}` line. Anything else
(warnings, library chatter) is ignored by the parent.
"""

from __future__ import annotations

import json
import sys

from .case import import_runner, run_case
from .spec import Case


def main() -> None:
    job = json.loads(sys.stdin.read())
    out = sys.stdout

    def step(n: int) -> None:
        out.write(f"@@step {n}\n")
        out.flush()

    import_runner(job.get("module"))  # a runner registered by a script's module, not by inrkit itself
    try:
        row = run_case(Case.from_dict(job["case"]), job["out"], keep_reconstruction=job.get("keep", False),
                       on_step=step)
    except KeyboardInterrupt:
        sys.exit(130)  # the parent records nothing for an interrupted case
    out.write("@@row " + json.dumps(row, default=str) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
