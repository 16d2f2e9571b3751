"""The report's PNG charts (matplotlib, Agg backend, no pyplot state): each function draws one file.

The caller registers a Chinese font first (`baogong.report.fonts.use`); titles and labels are Chinese.
Every chart is drawn at 150 dpi for A4 print, about 17 cm wide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from baogong.report.data import STATUS_ORDER, STATUS_ZH, rank

COLOURS = {"CRITICAL": "#a50f15", "SHORTAGE": "#e6550d", "STALE": "#9e9e9e", "WATCH": "#f2c14e", "OK": "#41a45b"}
NO_DATA = "#ffffff"
DPI = 150


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.savefig(path, dpi=DPI, facecolor="white")
    return path


def short_circle(name: str) -> str:
    """The demo city's circle names without the district prefix ("北林区·东升社区生活圈" -> "东升社区生活圈")."""
    return name.split("·", 1)[-1]


def status_grid(
    statuses: pd.DataFrame,
    days: pd.DataFrame,
    circle_names: Mapping[str, str],
    necessity_names: Mapping[str, str],
    path: Path,
) -> Path:
    """Circles x necessities coloured by the day's worst status, each cell the day's lowest days of supply."""
    rows, cols = list(statuses.index), list(statuses.columns)
    codes = [[rank(statuses.loc[r, c]) if isinstance(statuses.loc[r, c], str) else 5 for c in cols] for r in rows]
    cmap = ListedColormap([COLOURS[s] for s in STATUS_ORDER] + [NO_DATA])
    height = 1.7 + 0.3 * max(len(rows), 1)
    fig = Figure(figsize=(6.7, height))
    ax = fig.add_subplot()
    ax.imshow(codes or [[5]], cmap=cmap, vmin=-0.5, vmax=5.5, aspect="auto")
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            v = days.loc[r, c] if r in days.index and c in days.columns else math.nan
            if not pd.isna(v):
                dark = codes[i][j] in (0, 1)
                ax.text(
                    j,
                    i,
                    f"{v:.0f}" if v >= 10 else f"{v:.1f}",
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="white" if dark else "black",
                )
    ax.set_xticks(range(len(cols)), [necessity_names.get(c, c) for c in cols], fontsize=7, rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), [short_circle(circle_names.get(r, r)) for r in rows], fontsize=7)
    ax.set_xticks([x - 0.5 for x in range(1, len(cols))], minor=True)
    ax.set_yticks([y - 0.5 for y in range(1, len(rows))], minor=True)
    ax.grid(which="minor", color="white", linewidth=1.2)
    ax.tick_params(which="minor", length=0)
    ax.set_title("各生活圈当日最差状态（格内数字：当日最低可供天数）", fontsize=9)
    legend = [Patch(facecolor=COLOURS[s], label=STATUS_ZH[s]) for s in STATUS_ORDER]
    legend.append(Patch(facecolor=NO_DATA, edgecolor="#999999", label="无数据"))
    fig.legend(handles=legend, loc="lower center", ncol=6, fontsize=7, frameon=False)
    fig.subplots_adjust(left=0.2, right=0.98, top=1 - 0.35 / height, bottom=1.05 / height)
    return _save(fig, path)


def days_trend(
    hourly: pd.DataFrame,
    necessities: pd.DataFrame,
    circle_names: Mapping[str, str],
    highlight: Sequence[tuple[str, str]],
    path: Path,
) -> Path:
    """Small multiples, one per necessity: each circle's mean days of supply per hour (grey), the circles at
    risk for it in colour, the shortage line dashed and the watch line dotted."""
    codes = list(necessities["necessity"])
    ncols = 4
    nrows = max(1, math.ceil(len(codes) / ncols))
    fig = Figure(figsize=(6.7, 1.55 * nrows + 0.5))
    marked = set(highlight)
    palette = ["#d62728", "#1f77b4", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
    labelled: dict[str, str] = {}
    for k, nec in enumerate(necessities.to_dict("records")):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        mine = hourly[hourly["necessity"] == nec["necessity"]] if len(hourly) else hourly
        top = float(nec["watch_days"]) * 1.6
        for circle, series in mine.groupby("circle_id") if len(mine) else []:
            hours = [pd.Timestamp(b).tz_convert("Asia/Shanghai").hour + 0.5 for b in series["bucket"]]
            values = pd.to_numeric(series["days_avg"], errors="coerce")
            if (circle, nec["necessity"]) in marked:
                colour = labelled.setdefault(str(circle), palette[len(labelled) % len(palette)])
                ax.plot(hours, values, color=colour, linewidth=1.6, zorder=3)
            else:
                ax.plot(hours, values, color="#b0b0b0", linewidth=0.7, zorder=2)
            if values.notna().any():
                top = max(top, min(float(values.max()) * 1.1, float(nec["watch_days"]) * 4))
        ax.axhline(float(nec["shortage_days"]), color=COLOURS["SHORTAGE"], linestyle="--", linewidth=0.8)
        ax.axhline(float(nec["watch_days"]), color="#c9a227", linestyle=":", linewidth=0.8)
        ax.set_xlim(0, 24)
        ax.set_ylim(0, top)
        ax.set_xticks([0, 6, 12, 18, 24])
        ax.tick_params(labelsize=6, length=2)
        ax.set_title(str(nec["name_zh"]), fontsize=8, pad=2)
    handles = [Patch(facecolor=c, label=short_circle(circle_names.get(cid, cid))) for cid, c in labelled.items()]
    handles.append(Patch(facecolor="#b0b0b0", label="其他生活圈"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 4), fontsize=7, frameon=False)
    fig.suptitle("各类必需品可供天数（按小时平均；虚线：短缺线，点线：关注线；横轴：时）", fontsize=9)
    fig.subplots_adjust(
        left=0.06,
        right=0.99,
        top=1 - 0.45 / fig.get_figheight(),
        hspace=0.55,
        wspace=0.25,
        bottom=0.55 / fig.get_figheight() + 0.03,
    )
    return _save(fig, path)


def alert_handling(h: pd.DataFrame, path: Path) -> Path:
    """One bar per alert: from the page to its acknowledgement, then to its resolution (minutes)."""
    n = max(len(h), 1)
    fig = Figure(figsize=(6.7, 1.7 + 0.3 * n))
    ax = fig.add_subplot()
    labels = []
    for i, a in enumerate(h.to_dict("records") if len(h) else []):
        labels.append(f"{short_circle(str(a['circle']))}·{a['necessity_zh']}")
        ack, done = a["ack_min"], a["resolve_min"]
        if ack is not None and not pd.isna(ack):
            ax.barh(i, ack, color="#e6550d", height=0.6)
            if done is not None and not pd.isna(done):
                ax.barh(i, done - ack, left=ack, color="#3182bd", height=0.6)
            ax.text(ack, i, f" 确认 {ack:.0f} 分", va="center", fontsize=6.5)
        if done is not None and not pd.isna(done):
            ax.text(done, i, f" 解除 {done:.0f} 分", va="center", fontsize=6.5)
        elif ack is None or pd.isna(ack):
            ax.text(0, i, " 未确认", va="center", fontsize=6.5, color="#a50f15")
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("自告警发出起的分钟数", fontsize=7)
    ax.tick_params(labelsize=7)
    ax.set_title("告警处置时长", fontsize=9)
    xmax = max(
        [
            v
            for v in (h["resolve_min"].tolist() + h["ack_min"].tolist() if len(h) else [])
            if v is not None and not pd.isna(v)
        ]
        or [1.0]
    )
    ax.set_xlim(0, xmax * 1.35)
    ax.legend(
        handles=[Patch(facecolor="#e6550d", label="发出→确认"), Patch(facecolor="#3182bd", label="确认→解除")],
        fontsize=7,
        loc="lower right",
        frameon=False,
    )
    fig.tight_layout()
    return _save(fig, path)


def feed_health(f: pd.DataFrame, path: Path) -> Path:
    """Per supplier: records accepted (left) and rejected / duplicates (right); silent and late ones marked."""
    n = max(len(f), 1)
    fig = Figure(figsize=(6.7, 1.4 + 0.26 * n))
    left, right = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    rows = f.to_dict("records") if len(f) else []
    ys = list(range(len(rows)))
    colours = {"正常": "#41a45b", "迟报": "#f2c14e", "静默": "#9e9e9e"}
    left.barh(ys, [int(r["accepted"]) for r in rows], color=[colours[r["verdict"]] for r in rows], height=0.6)
    right.barh(ys, [int(r["rejected"]) for r in rows], color="#a50f15", height=0.6, label="拒收")
    right.barh(
        ys,
        [int(r["duplicates"]) for r in rows],
        left=[int(r["rejected"]) for r in rows],
        color="#bdbdbd",
        height=0.6,
        label="重复",
    )
    left.set_yticks(
        ys, [f"{r['name']}（{r['verdict']}）" if r["verdict"] != "正常" else str(r["name"]) for r in rows], fontsize=6.5
    )
    left.invert_yaxis()
    left.set_title("接收记录数", fontsize=8)
    right.set_title("拒收 / 重复", fontsize=8)
    right.legend(fontsize=6.5, frameon=False, loc="lower right")
    for ax in (left, right):
        ax.tick_params(labelsize=6.5)
    fig.suptitle("供应商数据报送（灰：全天静默，黄：迟报）", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)
