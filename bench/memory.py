"""Memory of the service processes a bench starts: their peak over a run, and how their
resident size moves over time (the soak run).

The kernel keeps each process's peak resident size (VmHWM in /proc/PID/status), so the
peak over a process's life is read once, just before it is stopped; sampling VmRSS
would miss a short spike. A service started several times in one run (each part
starts its own) keeps the largest peak.
"""

import time
from pathlib import Path

import eventlet

from bench.summary import Row

KIB_PER_MIB = 1024


def status_kib(pid, field):
    """A `kB` field of /proc/PID/status (VmRSS, VmHWM), or None once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


class Peaks:
    """The largest peak resident size (KiB) seen of each named process over a run."""

    def __init__(self):
        self.kib = {}

    def note(self, name, pid):
        peak = status_kib(pid, "VmHWM")
        if peak is not None:
            self.kib[name] = max(peak, self.kib.get(name, 0))

    def figures(self):
        """{peak_rss_<name>_mib: MiB} for the summary."""
        return {f"peak_rss_{name}_mib": kib / KIB_PER_MIB for name, kib in sorted(self.kib.items())}


def rows(figures):
    """A summary row for each service's peak, beside the bare Nameko service's."""
    return [
        Row(
            f"peak resident memory of {key[len('peak_rss_') : -len('_mib')]} (MiB)",
            key,
            BARE_KEY,
            "a bare Nameko service with one RPC method",
        )
        for key in figures
        if key.startswith("peak_rss_") and key != BARE_KEY
    ]


BARE_KEY = "peak_rss_bare_nameko_mib"
# Every Services of a bench run notes its processes here when it stops them.
RUN_PEAKS = Peaks()


class RssSampler:
    """Samples the resident size (KiB) of running processes every `interval` seconds in a
    green thread: {name: [(seconds since start, KiB), ...]}."""

    def __init__(self, pids, interval=2.0):
        self.pids = dict(pids)
        self.interval = interval
        self.samples = {name: [] for name in self.pids}
        self.started = time.perf_counter()
        self.running = True
        self.thread = eventlet.spawn(self._run)

    def _run(self):
        while self.running:
            moment = time.perf_counter() - self.started
            for name, pid in self.pids.items():
                rss = status_kib(pid, "VmRSS")
                if rss is not None:
                    self.samples[name].append((moment, rss))
            eventlet.sleep(self.interval)

    def stop(self):
        self.running = False
        self.thread.wait()
        return self.samples


def growth(samples):
    """How a process's resident size moved over `samples` [(seconds, KiB), ...]:
    the mean of the first and of the last quarter of the samples (MiB), the share the
    last grew over the first, and the least-squares slope (MiB per minute)."""
    if len(samples) < 4:
        raise ValueError("growth needs 4 samples or more")
    quarter = len(samples) // 4
    first = sum(kib for _, kib in samples[:quarter]) / quarter / KIB_PER_MIB
    last = sum(kib for _, kib in samples[-quarter:]) / quarter / KIB_PER_MIB
    times = [moment for moment, _ in samples]
    sizes = [kib / KIB_PER_MIB for _, kib in samples]
    mean_t, mean_s = sum(times) / len(times), sum(sizes) / len(sizes)
    spread = sum((moment - mean_t) ** 2 for moment in times)
    slope = (
        sum((moment - mean_t) * (size - mean_s) for moment, size in zip(times, sizes, strict=True))
        / spread
        if spread
        else 0.0
    )
    return {
        "first_quarter_mib": first,
        "last_quarter_mib": last,
        "growth": last / first - 1,
        "slope_mib_per_min": slope * 60,
        "peak_mib": max(sizes),
        "samples": len(samples),
    }
