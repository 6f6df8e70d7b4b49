"""Hypothesis profiles for the test suite.

"ci" (the default) is small and derandomised, so every run draws the same examples and a
failure reproduces. "deep" draws many more examples for an occasional thorough run:

    HYPOTHESIS_PROFILE=deep python -m pytest tests

The suite runs on every core (pytest-xdist, `-n auto` in pyproject.toml): one worker a
core, at most 8, and none inside an MPI launch, where each rank is one process of the job.
`python -m pytest -n 0` runs it in one process.
"""

import os
import pathlib
import sys

# A jitted function compiles its kernels in a background thread by default; the suite
# builds them on the second call instead (as before), so that which plan a call runs does
# not depend on timing. Tests of the background build turn it on themselves.
os.environ.setdefault("NANOFN_BACKGROUND_COMPILE", "0")

import pytest
from hypothesis import HealthCheck, settings

_MPI_LAUNCH = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: a worker a core (at most 8), and no workers under `mpiexec`."""
    if any(name in os.environ for name in _MPI_LAUNCH):
        return 0
    return min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1, 8)

settings.register_profile(
    "ci",
    max_examples=15,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile(
    "deep",
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The cases that reference values were recorded at (from JAX or scipy, by the scripts run by
# hand where those are installed) live with those scripts in tools/reference; the tests
# import the same cases from there and read the recorded values from their own folders.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools" / "reference"))


def _x64_flag(on):
    import nanofn
    before = nanofn.config.read("jax_enable_x64")
    nanofn.config.update("jax_enable_x64", on)
    try:
        yield
    finally:
        nanofn.config.update("jax_enable_x64", before)


@pytest.fixture
def x64():
    """The test runs with `jax_enable_x64` on (the flag is restored after it)."""
    yield from _x64_flag(True)


@pytest.fixture
def x32():
    """The test runs with `jax_enable_x64` off (the flag is restored after it)."""
    yield from _x64_flag(False)
