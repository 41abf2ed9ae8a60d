"""The class's two charts (PNG, matplotlib's non-interactive Agg backend)."""
from __future__ import annotations

from pathlib import Path


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def pass_rate_chart(path: Path, lab: str, rates: list[tuple[str, int, int, int]]) -> Path:
    """Horizontal bars: the share of graded submissions passing each check, lowest first."""
    plt = _pyplot()
    rows = sorted(rates, key=lambda r: (r[2] / r[3] if r[3] else 0.0, r[0]), reverse=True)
    fig, ax = plt.subplots(figsize=(8, 0.4 * max(len(rows), 3) + 1.2))
    values = [100 * p / n if n else 0.0 for _, _, p, n in rows]
    ax.barh([r[0] for r in rows], values, color="#4c72b0")
    for y, (v, (_, _, p, n)) in enumerate(zip(values, rows)):
        ax.text(min(v + 1, 92), y, f"{p}/{n}", va="center", fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("graded submissions passing (%)")
    ax.set_title(f"Lab {lab}: pass rate per check")
    return _save(plt, fig, path)


def score_histogram(path: Path, lab: str, scores: list[int], max_score: int) -> Path:
    """One bar per possible score, 0..max."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.hist(scores, bins=[b - 0.5 for b in range(max_score + 2)], color="#55a868", edgecolor="white")
    ax.set_xlim(-0.5, max_score + 0.5)
    ax.set_xlabel(f"score (of {max_score})")
    ax.set_ylabel("submissions")
    ax.set_title(f"Lab {lab}: scores of {len(scores)} graded submissions")
    return _save(plt, fig, path)


def _save(plt, fig, path: Path) -> Path:
    """Write the figure reproducibly (no software stamp) and free it."""
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return path
