"""The command line in this process: ``run_cli("bucket", "doctor", env={...})`` runs what
``python -m s3drop bucket doctor`` runs (:func:`s3drop._cli.main`, its one-line errors and exit
codes included) and answers as ``subprocess.run(..., capture_output=True, text=True)`` does, without
starting an interpreter and importing s3drop again (about 0.6 s of CPU each). For tests of what a
command does; a test of the process itself (the entry point, signals, what a real terminal shows)
runs ``python -m s3drop``.
"""

from __future__ import annotations

import contextlib
import gc
import io
import sys
import warnings
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from s3drop._cli import main


def run_cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> CompletedProcess[str]:
    """Run ``s3drop *args`` with ``env`` over this process's environment (which the suite's
    autouse fixture has already cleared of AWS_* and S3DROP_*), in ``cwd``; its exit code, stdout
    and stderr. A command that leaves a client unclosed (the process's exit would close it) has it
    closed here, quietly."""
    out, err = io.StringIO(), io.StringIO()
    code: int | str | None = 0
    with pytest.MonkeyPatch.context() as patch, warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        patch.setenv("COLUMNS", "200")
        for name, value in (env or {}).items():
            patch.setenv(name, value)
        if cwd is not None:
            patch.chdir(cwd)
        patch.setattr(sys, "argv", ["s3drop", *args])
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
            except SystemExit as exit:
                code = exit.code
        gc.collect()  # what the command left open goes now, under the filter above
    returncode = code if isinstance(code, int) else (0 if code is None else 1)
    return CompletedProcess(["s3drop", *args], returncode, out.getvalue(), err.getvalue())
