# Order statistics of a case's runs, the spread test that decides whether a ratio may be
# printed, and the stable JSON form of bench/results/*.json. Pure functions: no processes here.

import math

# A figure whose interquartile range is wider than this fraction of its median is flagged:
# it is printed, but no ratio is drawn from it.
WIDE_SPREAD = 0.25


def quantile(sorted_values, q):
    """Linear interpolation between closest ranks (numpy's default, R type 7)."""
    if not sorted_values:
        return math.nan
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = math.ceil(pos)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarise(values):
    v = sorted(values)
    return {
        "median": quantile(v, 0.5),
        "min": v[0] if v else math.nan,
        "max": v[-1] if v else math.nan,
        "p25": quantile(v, 0.25),
        "p75": quantile(v, 0.75),
        "runs": len(v),
    }


def too_wide(summary):
    m = summary["median"]
    if not summary["runs"] or m == 0 or math.isnan(m):
        return True
    return (summary["p75"] - summary["p25"]) / abs(m) > WIDE_SPREAD


# A figure of fewer runs than this is few-run: its quartiles say little about its spread, so a
# ratio is drawn from it only where the two tools' min-max ranges do not overlap.
FEW_RUNS = 5


def few_runs(summary):
    return summary["runs"] < FEW_RUNS


def ratio(tool, reference):
    """tool / reference, or None when either spread cannot support a ratio."""
    if too_wide(tool) or too_wide(reference) or reference["median"] == 0:
        return None
    if (few_runs(tool) or few_runs(reference)) and not (
            tool["min"] > reference["max"] or tool["max"] < reference["min"]):
        return None
    return tool["median"] / reference["median"]


def record(case, tool, unit, summary):
    """One entry of "cases" in the results file: median_<unit>, min_<unit>, ..."""
    out = {"case": case, "tool": tool}
    for key in ("median", "min", "max", "p25", "p75"):
        value = summary[key]
        out[f"{key}_{unit}"] = None if math.isnan(value) else round(value, 3)
    out["runs"] = summary["runs"]
    return out
