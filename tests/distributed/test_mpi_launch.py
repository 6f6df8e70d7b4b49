"""Starts the multi-process tests: `mpiexec -n 2` (and 3) over tests/distributed/mpi, and
the fault cases of tests/distributed/scripts/faults.py. Skipped without mpi4py/mpiexec."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

pytest.importorskip("mpi4py", reason="needs the [distributed] extra (mpi4py and an MPI)")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MPIEXEC = shutil.which("mpiexec") or os.path.join(os.path.dirname(sys.executable), "mpiexec")
if not os.path.exists(MPIEXEC):
    pytest.skip("mpiexec not found: install the [distributed] extra", allow_module_level=True)
FAULTS = os.path.join(ROOT, "tests", "distributed", "scripts", "faults.py")


def mpirun(n, *args, timeout=240):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    proc = subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return proc, time.perf_counter() - start


@pytest.mark.parametrize("n", [2, 3])
def test_mpi_suite(n):
    # with 3 processes (uneven splits): the collectives, data parallelism, mismatches
    select = [] if n == 2 else ["-k", "collective and not gradients or data_parallel or mismatch"]
    proc, _ = mpirun(n, "-m", "pytest", "tests/distributed/mpi", "-q", "-x",
                     "-p", "no:cacheprovider", *select)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]


def test_a_rank_that_raises_stops_every_rank_naming_it():
    proc, seconds = mpirun(2, FAULTS, "raise", timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and seconds < 60, out[-3000:]
    assert "process 1 of 2 raised ValueError: boom on purpose" in out, out[-3000:]
    assert "rank 0 was not stopped" not in out


def test_a_rank_that_dies_stops_every_rank():
    proc, seconds = mpirun(2, FAULTS, "die", timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and seconds < 60, out[-3000:]
    assert "rank 0 was not stopped" not in out


def test_a_process_waiting_long_in_a_collective_says_which():
    proc, _ = mpirun(2, FAULTS, "late", timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "process 0 of 2 has waited 1 s for the others in psum(f64[2])" in out, out[-3000:]
    assert "process 1 of 2 has waited" not in out
    assert "rank 0 got [[2.0, 2.0]]" in out and "rank 1 got [[2.0, 2.0]]" in out


def test_collective_before_initialize_in_a_launch_is_an_error():
    proc, _ = mpirun(2, FAULTS, "no-init", timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "one of 2 started by an MPI launcher" in out and "initialize()" in out, out[-3000:]


def test_example_matches_one_process_and_a_killed_run_resumes(tmp_path):
    full = str(tmp_path / "full.npz")
    proc, _ = mpirun(2, FAULTS, "resume", full, "-1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the example's loss curve over 2 processes equals one process on the same global batch
    sys.path.insert(0, os.path.join(ROOT, "examples"))
    try:
        import dp_digits
    finally:
        sys.path.pop(0)
    one = dp_digits.main(steps=8, verbose=False)["losses"]
    np.testing.assert_allclose(np.load(full + ".losses.npy"), one, rtol=1e-5)
    cut = str(tmp_path / "cut.npz")
    proc, _ = mpirun(2, FAULTS, "resume", cut, "5")  # dies after step 5 (saved at 3)
    assert proc.returncode != 0
    assert not os.path.exists(cut + ".losses.npy")
    proc, _ = mpirun(2, FAULTS, "resume", cut, "-1")  # restarts from step 3
    assert proc.returncode == 0, proc.stderr[-3000:]
    # equal up to float32 rounding: a jitted function's first call in a process runs
    # unfused (nanofn._kernels defers numba), later calls fused, which may differ in the
    # last bit; the resumed run's first step is such a first call
    np.testing.assert_allclose(np.load(cut + ".losses.npy"), np.load(full + ".losses.npy"),
                               rtol=1e-6)
    np.testing.assert_allclose(np.load(cut + ".w.npy"), np.load(full + ".w.npy"),
                               rtol=1e-5, atol=1e-7)


def test_initialize_in_a_single_process_without_mpiexec():
    code = ("import nanofn\n"
            "nanofn.distributed.initialize()\n"
            "assert nanofn.device_count() == 1 and nanofn.process_index() == 0\n"
            "try:\n"
            "    nanofn.distributed.initialize()\n"
            "except RuntimeError as e:\n"
            "    assert 'already called' in str(e)\n"
            "else:\n"
            "    raise AssertionError('initialize twice did not raise')\n"
            "nanofn.distributed.shutdown()\n"
            "nanofn.distributed.initialize()\n"
            "print('ok')\n")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for var in ("PMI_SIZE", "PMI_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE"):
        env.pop(var, None)
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stderr[-3000:]
