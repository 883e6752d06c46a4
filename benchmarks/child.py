"""One measurement of one logging configuration, in a fresh process.

Started by run.py, never by hand:

    python child.py MEASURE KIND LOG_DIR RESULT_FILE N RUN_ID [PACKAGE] [--profile]

MEASURE is one of ``startup``, ``filtered``, ``records`` or ``burst``. The process's
stdout and stderr are the console sinks (run.py points them at /dev/null); the
figures go to RESULT_FILE as JSON, written by the last exit handler, after every
other exit handler (the libraries' own flushes and drains) has run.

Only modules that a bare interpreter has already loaded are imported before the
clock starts, so that ``startup`` includes everything a configuration imports.
"""

from __future__ import annotations

import atexit
import os
import sys
import time

import peers

now = time.perf_counter_ns
RESULT: dict = {}  # what finish() writes
FILTERED_BATCHES = 10


class NoLogger:
    """Same call shape as a logger, does nothing: the cost of the loop and call."""

    def debug(self, msg: str, *args: object) -> None:
        pass


def emit(log, template: str, run_id: str, n: int) -> None:
    x = 0.5
    for i in range(n):
        log.info(template, run_id, i, x)


def call_filtered(log, template: str, n: int) -> int:
    """Time ``n`` calls of ``log.debug("step %d loss %.4f", i, x)``, in ns."""
    x = 0.5
    start = now()
    for i in range(n):
        log.debug(template, i, x)
    return now() - start


def proc_status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS counter (VmHWM) from the current RSS."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def peak_rss_kib() -> int:
    import resource

    peak = proc_status_kib("VmHWM")
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def measure(argv: list[str]) -> None:
    measure_name, kind, log_dir, _result_file, n_text, run_id = argv[:6]
    package = argv[6] if len(argv) > 6 and not argv[6].startswith("--") else None
    n = int(n_text)
    RESULT.update(measure=measure_name, kind=kind, n=n, run_id=run_id)

    if measure_name == "startup":
        start = now()
        peers.setup(kind, log_dir, package)
        RESULT["startup_ns"] = now() - start
        return

    setup = peers.setup(kind, log_dir, package)

    if measure_name == "filtered":
        log, template = setup.log, setup.debug_template
        call_filtered(log, template, 1000)  # fill the level caches
        call_filtered(NoLogger(), template, 1000)
        batch = max(1, n // FILTERED_BATCHES)
        real, empty = [], []
        for _ in range(FILTERED_BATCHES):  # interleaved, so noise hits both
            empty.append(call_filtered(NoLogger(), template, batch) / batch)
            real.append(call_filtered(log, template, batch) / batch)
        # The fastest batch: a burst of other load on the machine only slows one.
        RESULT["filtered_ns"] = min(real)
        RESULT["empty_call_ns"] = min(empty)
        return

    # records / burst: n emitted records, timed to the end of the process.
    profiler = None
    if "--profile" in argv:
        import cProfile

        profiler = cProfile.Profile()
    if measure_name == "burst":
        RESULT["peak_reset"] = reset_peak_rss()
        RESULT["rss_before_kib"] = proc_status_kib("VmRSS") or peak_rss_kib()
    RESULT["start_ns"] = start = now()
    if profiler:
        profiler.enable()
    emit(setup.log, setup.info_template, run_id, n)
    if profiler:
        profiler.disable()
    RESULT["emitted_ns"] = (now() - start) / n
    if measure_name == "burst":
        RESULT["rss_after_calls_kib"] = proc_status_kib("VmRSS")
    before_shutdown = now()
    setup.shutdown()
    RESULT["shutdown_ms"] = (now() - before_shutdown) / 1e6
    if profiler:
        import io
        import pstats

        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(15)
        profile = text.getvalue()
        import sysconfig

        for name in ("purelib", "platlib", "stdlib"):  # keep "logging/..." and such
            profile = profile.replace(sysconfig.get_path(name) + os.sep, "")
        RESULT["profile"] = profile


def finish() -> None:
    """Registered first, so it runs last: after logging's and the libraries' own."""
    end = now()
    if "start_ns" in RESULT:
        RESULT["wall_ns"] = (end - RESULT.pop("start_ns")) / RESULT["n"]
    if RESULT.get("measure") == "burst":
        RESULT["peak_rss_kib"] = peak_rss_kib()
    import json

    with open(sys.argv[4], "w", encoding="utf-8") as out:
        json.dump(RESULT, out)


def main() -> None:
    atexit.register(finish)
    try:
        measure(sys.argv[1:])
    except Exception:
        import traceback

        RESULT["error"] = traceback.format_exc()


if __name__ == "__main__":
    main()
