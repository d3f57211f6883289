"""stats -- the pure arithmetic of the figures: percentiles, latency by
tenth of a burst, and a burst's summary from its raw timings. No I/O, so
each is tested on its own (bench/test_usherbench.py)."""

import math


def percentile(sorted_values, q):
    """The value at quantile q (0..1) of an ascending list: element
    int(q * n), the last for q = 1; NaN for an empty list."""
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def deciles(latencies):
    """latencies (s, in sending order, None = unanswered) by tenth:
    [min, median, max] ms of each tenth that has an answer."""
    n, out = len(latencies), []
    for d in range(10):
        part = sorted(x for x in latencies[d * n // 10:(d + 1) * n // 10] if x is not None)
        if part:
            out.append([round(part[0] * 1000), round(part[len(part) // 2] * 1000), round(part[-1] * 1000)])
    return out


def burst_summary(results, sched, sent, t0, last_sent, waited):
    """A burst's figures. results[i]: (status, answered at) or None;
    sched[i]/sent[i]: when request i was due and written (loop time, s);
    status 0 = no valid answer."""
    n = len(results)
    ok = sum(1 for r in results if r and 200 <= r[0] < 300)
    lat_in_order = [r[1] - s if r and r[0] else None for r, s in zip(results, sched)]
    lat = sorted(x for x in lat_in_order if x is not None)
    statuses = {}
    for r in results:
        s = r[0] if r else None
        statuses[s] = statuses.get(s, 0) + 1
    answered_at = max((r[1] for r in results if r), default=t0)
    return {"n": n, "ok": ok, "statuses": statuses, "idle_wait_s": waited,
            "send_window_s": last_sent - t0,
            "send_lag_max_ms": max((s - c for s, c in zip(sent, sched)), default=0.0) * 1000,
            "p50_ms": percentile(lat, 0.50) * 1000, "p99_ms": percentile(lat, 0.99) * 1000,
            "max_ms": (lat[-1] if lat else 0) * 1000,
            "last_answer_s": answered_at - t0, "lat_by_decile": deciles(lat_in_order)}


def median_sorted_desc(values):
    """values sorted descending (as the sweep keeps them): the element at
    n // 2, 0 for none."""
    return values[len(values) // 2] if values else 0
