"""Fault cases run under `mpiexec` by tests/distributed/test_mpi_launch.py.

    python faults.py raise        # rank 1 raises while rank 0 waits in a collective
    python faults.py die          # rank 1 is killed by a signal
    python faults.py no-init      # a collective without nanofn.distributed.initialize()
    python faults.py late         # rank 1 reaches a collective 3 s after rank 0
    python faults.py resume CKPT KILL_AT   # train, rank 1 dies after step KILL_AT
"""

import os
import signal
import sys
import time

import numpy as np


def main(case, *rest):
    import nanofn
    from nanofn import lax
    if case == "no-init":
        nanofn.pmap(lambda v: lax.psum(v, "d"), axis_name="d")(np.ones((1, 2)))
        return
    if case == "resume":
        path, kill_at = rest[0], int(rest[1])
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples"))
        import dp_digits

        def on_step(step):
            if step == kill_at and nanofn.process_index() == 1:
                os.kill(os.getpid(), signal.SIGKILL)
        result = dp_digits.main(steps=8, checkpoint=path, every=3, verbose=False,
                                on_step=on_step)
        if nanofn.process_index() == 0:
            np.save(path + ".losses.npy", np.array(result["losses"]))
            np.save(path + ".w.npy", np.asarray(nanofn.tree.leaves(result["params"])[0]))
        return
    if case == "late":  # rank 0 waits, says so after 1 s, and goes on when rank 1 comes
        nanofn.distributed.initialize(report_wait_seconds=1)
        if nanofn.process_index() == 1:
            time.sleep(3)
        out = nanofn.pmap(lambda v: lax.psum(v, "d"), axis_name="d")(np.ones((1, 2)))
        print(f"rank {nanofn.process_index()} got {np.asarray(out).tolist()}", flush=True)
        return
    nanofn.distributed.initialize()
    f = nanofn.pmap(lambda v: lax.psum(v, "d"), axis_name="d")
    f(np.ones((1, 2)))  # everyone gets here
    if nanofn.process_index() == 1:
        if case == "raise":
            raise ValueError("boom on purpose")
        os.kill(os.getpid(), signal.SIGKILL)
    f(np.ones((1, 2)))  # rank 0 waits here for a partner that never comes
    print("rank 0 was not stopped", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
