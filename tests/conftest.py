"""Hypothesis profiles for the test suite.

"ci" (the default) is small and derandomised, so every run draws the same examples and a
failure reproduces. "deep" draws many more examples for an occasional thorough run:

    HYPOTHESIS_PROFILE=deep python -m pytest tests
"""

import os

# A jitted function compiles its kernels in a background thread by default; the suite
# builds them on the second call instead (as before), so that which plan a call runs does
# not depend on timing. Tests of the background build turn it on themselves.
os.environ.setdefault("NANOFN_BACKGROUND_COMPILE", "0")

from hypothesis import HealthCheck, settings

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

# Scripts that record reference values from JAX or scipy live beside the tests that read
# their output; they are run by hand where JAX is installed, never collected.
collect_ignore_glob = ["*/record_*.py"]
