"""nanofn.monitoring (jax.monitoring): listeners get what is recorded, jit records a trace
event per new signature and a compile event when a fused plan is built; nanofn.dlpack."""

from __future__ import annotations

import numpy as np
import pytest

import nanofn
import nanofn.numpy as fnp
from nanofn import dlpack, monitoring


@pytest.fixture
def durations():
    seen = []

    def listener(event, secs, **kwargs):
        seen.append((event, secs, kwargs))
    monitoring.register_event_duration_secs_listener(listener)
    yield seen
    monitoring.unregister_event_duration_listener(listener)


def test_jit_records_a_trace_per_signature_and_a_compile_per_fused_plan(durations):
    def scale(x):
        return x * 2 + 1

    f = nanofn.jit(scale)
    f(fnp.ones(3))
    f(fnp.ones(3))  # a cache hit: no new trace
    f(fnp.ones(4))
    traces = [d for d in durations if d[0] == monitoring.JAXPR_TRACE_EVENT]
    assert [d[2] for d in traces] == [{"fun_name": "scale"}] * 2
    assert all(d[1] >= 0 for d in traces)
    f.lower(fnp.ones(5)).compile()  # builds the fused plan now
    builds = [d for d in durations if d[0] == monitoring.BACKEND_COMPILE_EVENT]
    assert builds and builds[-1][2] == {"fun_name": "scale"} and builds[-1][1] >= 0


def test_each_kind_of_record_reaches_its_own_listeners():
    got = []
    listeners = [
        (monitoring.register_event_listener, monitoring.unregister_event_listener,
         lambda e, **kw: got.append(("event", e, kw))),
        (monitoring.register_event_time_span_listener,
         monitoring.unregister_event_time_span_listener,
         lambda e, a, b, **kw: got.append(("span", e, a, b, kw))),
        (monitoring.register_scalar_listener, monitoring.unregister_scalar_listener,
         lambda e, v, **kw: got.append(("scalar", e, v, kw))),
    ]
    for register, _, cb in listeners:
        register(cb)
    monitoring.record_event("/t/e", step=1)
    monitoring.record_event_time_span("/t/s", 1.0, 2.5)
    monitoring.record_scalar("/t/v", 0.5, tag="x")
    assert got == [("event", "/t/e", {"step": 1}), ("span", "/t/s", 1.0, 2.5, {}),
                   ("scalar", "/t/v", 0.5, {"tag": "x"})]
    for _, unregister, cb in listeners:
        unregister(cb)
    with pytest.raises(ValueError, match="is not a registered event listener"):
        monitoring.unregister_event_listener(listeners[0][2])
    monitoring.register_event_listener(listeners[0][2])
    monitoring.clear_event_listeners()
    monitoring.record_event("/t/e")
    assert len(got) == 3


def test_dlpack_reads_copies_and_names_what_it_cannot_read():
    src = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = dlpack.from_dlpack(src)
    src[0, 0] = 100.0  # the result owns its data
    np.testing.assert_array_equal(out, np.arange(6, dtype=np.float32).reshape(2, 3))
    back = dlpack.from_dlpack(fnp.arange(3.0))  # nanofn's own arrays export DLPack
    np.testing.assert_array_equal(back, [0.0, 1.0, 2.0])
    assert dlpack.is_supported_dtype(np.complex64) and not dlpack.is_supported_dtype(object)
    with pytest.raises(TypeError, match="from_dlpack: cannot read a DLPack array from list"):
        dlpack.from_dlpack([1, 2])
