"""PNG plots for reports (matplotlib, headless): a spec of panels, series and marks in,
a file out. Scenarios record the spec; :meth:`harness.report.Report.write_all` draws it.

A spec: ``{"title", "xlabel", "panels": [{"ylabel", "series": {label: [(x, y), ...]},
"hlines": {label: y}}], "marks": {label: x}}``.
"""
from __future__ import annotations

from pathlib import Path


def draw(spec: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = spec.get("panels") or []
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 3.2 * len(panels)), sharex=True, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        for label, points in (panel.get("series") or {}).items():
            if points:
                xs, ys = zip(*points)
                ax.step(xs, ys, where="post", label=label)
        for label, y in (panel.get("hlines") or {}).items():
            ax.axhline(y, linestyle=":", color="grey", linewidth=1)
            ax.annotate(label, (0, y), fontsize=7, color="grey", va="bottom")
        for i, (label, x) in enumerate((spec.get("marks") or {}).items()):
            ax.axvline(x, linestyle="--", color=f"C{4 + i % 4}", linewidth=1, label=label if ax is axes[0, 0] else None)
        ax.set_ylabel(panel.get("ylabel", ""))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, loc="upper left", ncol=2)
    axes[-1, 0].set_xlabel(spec.get("xlabel", ""))
    fig.suptitle(spec.get("title", ""), fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
