"""jax set-up shared by the GPU stage and the batch worker: the persistent compilation cache,
and a clock that separates XLA compile time from prediction time."""
import logging
import threading
import time

import jax

_COMPILE_EVENTS = ('/jax/core/compile/backend_compile_duration',
                   '/jax/core/compile/jaxpr_trace_duration',
                   '/jax/core/compile/jaxpr_to_mlir_module_duration')
log = logging.getLogger(__name__)


def use_compilation_cache(directory):
    """Share compiled executables across processes and jobs (array tasks reuse each other's)."""
    if not directory:
        return
    try:
        jax.config.update('jax_compilation_cache_dir', directory)
        jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.5)
        jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
    except AttributeError:   # jax before 0.4 (the legacy images) has no such options
        log.info('JAX %s has no persistent compilation cache; %s is not used', jax.__version__, directory)
        return
    log.info('JAX compilation cache: %s', directory)


class CompileClock(object):
    """Seconds jax spent tracing and compiling, and the number of backend compiles. jax reports
    nested traces too (jax 0.4.26 traces each jnp call as an inner pjit), so the seconds are the
    union of the reported intervals, each counted once."""

    def __init__(self):
        self.seconds = 0.0
        self.compiles = 0
        self._spans = []   # disjoint (start, end) in time order; a finished event ends last
        self._lock = threading.Lock()
        monitoring = getattr(jax, 'monitoring', None)   # absent before jax 0.4: compile time reads 0
        if monitoring is not None:
            monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event, duration, **kwargs):
        if event not in _COMPILE_EVENTS:
            return
        end = time.monotonic()
        start = end - duration
        with self._lock:
            # Spans that overlap this one (nested in it, or another thread's) merge into it.
            while self._spans and self._spans[-1][1] > start:
                earlier, later = self._spans.pop()
                self.seconds -= later - earlier
                start, end = min(start, earlier), max(end, later)
            self._spans.append((start, end))
            self.seconds += end - start
            if event == _COMPILE_EVENTS[0]:
                self.compiles += 1

    def snapshot(self):
        return self.seconds, self.compiles


def gpu_count():
    try:
        return len(jax.devices('gpu'))
    except RuntimeError:
        return 0
