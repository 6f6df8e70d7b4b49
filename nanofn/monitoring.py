"""Events for metrics collectors (`jax.monitoring`): named events, durations, time spans
and scalars, passed to the listeners registered for them.

nanofn records, as JAX does, `"/jax/core/compile/jaxpr_trace_duration"` each time `jit`
traces a new signature and `"/jax/core/compile/backend_compile_duration"` when a
signature's fused plan is built (its kernels compiled or loaded), both with the
function's name as `fun_name`. Programs add their own events with `record_event` and
friends. With no listener registered, recording costs a loop over an empty list.

Example:
    >>> import nanofn
    >>> from nanofn import monitoring
    >>> seen = []
    >>> listener = lambda event, secs, **kw: seen.append((event, kw["fun_name"]))
    >>> monitoring.register_event_duration_secs_listener(listener)
    >>> _ = nanofn.jit(lambda x: x * 2)(1.0)
    >>> seen[0]
    ('/jax/core/compile/jaxpr_trace_duration', '<lambda>')
    >>> monitoring.unregister_event_duration_listener(listener)
"""

from __future__ import annotations

from typing import Callable

__all__ = ["record_event", "record_event_duration_secs", "record_event_time_span",
           "record_scalar", "register_event_listener", "register_event_duration_secs_listener",
           "register_event_time_span_listener", "register_scalar_listener",
           "unregister_event_listener", "unregister_event_duration_listener",
           "unregister_event_time_span_listener", "unregister_scalar_listener",
           "clear_event_listeners"]

JAXPR_TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"

# one list of callbacks per kind of record
_listeners: dict[str, list[Callable]] = {"event": [], "duration": [], "span": [],
                                         "scalar": []}


def record_event(event: str, **kwargs) -> None:
    """Call every event listener with `(event, **kwargs)`.

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.record_event("/my_app/checkpoint_saved", step=10)
    """
    for callback in _listeners["event"]:
        callback(event, **kwargs)


def record_event_duration_secs(event: str, duration: float, **kwargs) -> None:
    """Call every duration listener with `(event, duration, **kwargs)` (seconds).

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.record_event_duration_secs("/my_app/epoch", 12.5)
    """
    for callback in _listeners["duration"]:
        callback(event, duration, **kwargs)


def record_event_time_span(event: str, start_time: float, end_time: float, **kwargs) -> None:
    """Call every time-span listener with `(event, start_time, end_time, **kwargs)`.

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.record_event_time_span("/my_app/eval", 100.0, 103.5)
    """
    for callback in _listeners["span"]:
        callback(event, start_time, end_time, **kwargs)


def record_scalar(event: str, value, **kwargs) -> None:
    """Call every scalar listener with `(event, value, **kwargs)`.

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.record_scalar("/my_app/loss", 0.25)
    """
    for callback in _listeners["scalar"]:
        callback(event, value, **kwargs)


def register_event_listener(callback: Callable) -> None:
    """Call `callback(event, **kwargs)` on every `record_event`.

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.register_event_listener(print)
        >>> monitoring.record_event("/my_app/start")
        /my_app/start
        >>> monitoring.unregister_event_listener(print)
    """
    _listeners["event"].append(callback)


def register_event_duration_secs_listener(callback: Callable) -> None:
    """Call `callback(event, duration, **kwargs)` on every `record_event_duration_secs`.

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.register_event_duration_secs_listener(print)
        >>> monitoring.record_event_duration_secs("/my_app/epoch", 1.5)
        /my_app/epoch 1.5
        >>> monitoring.unregister_event_duration_listener(print)
    """
    _listeners["duration"].append(callback)


def register_event_time_span_listener(callback: Callable) -> None:
    """Call `callback(event, start_time, end_time, **kwargs)` on every
    `record_event_time_span`.

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.register_event_time_span_listener(print)
        >>> monitoring.record_event_time_span("/my_app/eval", 1.0, 2.0)
        /my_app/eval 1.0 2.0
        >>> monitoring.unregister_event_time_span_listener(print)
    """
    _listeners["span"].append(callback)


def register_scalar_listener(callback: Callable) -> None:
    """Call `callback(event, value, **kwargs)` on every `record_scalar`.

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.register_scalar_listener(print)
        >>> monitoring.record_scalar("/my_app/loss", 0.25)
        /my_app/loss 0.25
        >>> monitoring.unregister_scalar_listener(print)
    """
    _listeners["scalar"].append(callback)


def _unregister(kind, callback, what):
    if callback not in _listeners[kind]:
        raise ValueError(f"{callback!r} is not a registered {what} listener")
    _listeners[kind].remove(callback)


def unregister_event_listener(callback: Callable) -> None:
    """Stop calling an event listener (ValueError if it is not registered).

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.unregister_event_listener(print)
        Traceback (most recent call last):
        ...
        ValueError: <built-in function print> is not a registered event listener
    """
    _unregister("event", callback, "event")


def unregister_event_duration_listener(callback: Callable) -> None:
    """Stop calling a duration listener (ValueError if it is not registered).

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.register_event_duration_secs_listener(print)
        >>> monitoring.unregister_event_duration_listener(print)
    """
    _unregister("duration", callback, "event duration")


def unregister_event_time_span_listener(callback: Callable) -> None:
    """Stop calling a time-span listener (ValueError if it is not registered).

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.register_event_time_span_listener(print)
        >>> monitoring.unregister_event_time_span_listener(print)
    """
    _unregister("span", callback, "time span")


def unregister_scalar_listener(callback: Callable) -> None:
    """Stop calling a scalar listener (ValueError if it is not registered).

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.register_scalar_listener(print)
        >>> monitoring.unregister_scalar_listener(print)
    """
    _unregister("scalar", callback, "scalar")


def clear_event_listeners() -> None:
    """Remove every listener of every kind.

    Example:
        >>> from nanofn import monitoring
        >>> monitoring.clear_event_listeners()
    """
    for callbacks in _listeners.values():
        callbacks.clear()
