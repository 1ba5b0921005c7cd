# svg.py: draws bench/results.svg by hand (no plotting library): one panel per
# metric, horizontal bars as ratios to tini-static (to curl for the health
# check client, to the target for the endpoint), kai-init highlighted.
# Used by report.py: svg.chart(results_dict, report) -> SVG text.
from xml.sax.saxutils import escape

W = 1000          # whole chart width
COLS = 2
PW = 480          # panel width
GAP = 20
LABEL_W = 110     # room for the init names
VALUE_W = 120     # room for the value text right of the bar
BAR_H = 16
ROW_H = 22
TITLE_H = 34
CLAMP = 4.0       # bars longer than 4× the reference are cut and marked

KAI = "#d9480f"
OTHER = "#5c7cfa"
MUTED = "#868e96"


def fmt(x):
    if x is None:
        return "n/a"
    if isinstance(x, int):
        return f"{x:,}"
    ax = abs(x)
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def text_by_bar(length, ry, label):
    """The value right of its bar, or inside it (white) when it would not fit in the panel."""
    if LABEL_W + length + 4 + 6.5 * len(label) <= PW - 4:
        return (f'<text x="{LABEL_W + length + 4:.1f}" y="{ry + 12}" paint-order="stroke" stroke="#f8f9fa" '
                f'stroke-width="4">{escape(label)}</text>')
    return (f'<text x="{LABEL_W + length - 4:.1f}" y="{ry + 12}" text-anchor="end" fill="white">'
            f'{escape(label)}</text>')


def panel_head(x, y, h, title, subtitle):
    """The opening of a panel: its group, frame, title and (already escaped) subtitle."""
    return [f'<g transform="translate({x},{y})">',
            f'<rect width="{PW}" height="{h}" fill="#f8f9fa" stroke="#dee2e6"/>',
            f'<text x="10" y="20" font-weight="bold">{escape(title)}</text>',
            f'<text x="{PW - 10}" y="20" text-anchor="end" fill="{MUTED}" font-size="11">'
            f'{subtitle}</text>']


def panel(x, y, title, unit, rows, ref_name):
    """rows: [(name, value)]; bars are value / value_of(ref_name), or absolute if the reference is 0/missing."""
    vals = dict(rows)
    ref = vals.get(ref_name)
    relative = bool(ref)
    scale_vals = [(v / ref if relative else v) for _, v in rows if v is not None]
    top = max(scale_vals + [1.0 if relative else 0.0]) or 1.0
    top = min(top, CLAMP) if relative else top
    bw = PW - LABEL_W - VALUE_W - 10
    h = TITLE_H + ROW_H * len(rows) + 10
    out = panel_head(x, y, h, title,
                     f'{escape(("× " + ref_name) if relative else "absolute")}, lower is better')
    if relative:  # the reference line goes under the bars and their labels
        rx = LABEL_W + bw * 1.0 / top
        out.append(f'<line x1="{rx:.1f}" y1="{TITLE_H - 4}" x2="{rx:.1f}" y2="{h - 6}" '
                   f'stroke="#212529" stroke-dasharray="3,3"/>')
    for i, (name, v) in enumerate(rows):
        ry = TITLE_H + i * ROW_H
        out.append(f'<text x="{LABEL_W - 6}" y="{ry + 12}" text-anchor="end">{escape(name)}</text>')
        if v is None:
            out.append(f'<text x="{LABEL_W}" y="{ry + 12}" fill="{MUTED}">n/a</text>')
            continue
        r = v / ref if relative else v
        length = bw * min(r, top) / top
        color = KAI if name.startswith("kai-init") else OTHER
        out.append(f'<rect x="{LABEL_W}" y="{ry}" width="{max(length, 1):.1f}" height="{BAR_H}" fill="{color}"/>')
        if relative and r > CLAMP:
            out.append(f'<text x="{LABEL_W + length - 4:.1f}" y="{ry + 12}" text-anchor="end" fill="white">»</text>')
        label = f"{fmt(v)} {unit}" + (f" · {r:.2f}×" if relative else "")
        out.append(text_by_bar(length, ry, label))
    out.append("</g>")
    return "\n".join(out), h


def target_panel(x, y, title, rows):
    """rows: [(label, value, target, unit, higher_is_better)]: bars as fraction of the target."""
    bw = PW - LABEL_W - VALUE_W - 10
    h = TITLE_H + ROW_H * len(rows) + 10
    out = panel_head(x, y, h, title, '× target (dashed line)')
    top = min(max([1.0] + [v / t for _, v, t, _, _ in rows if v is not None]), CLAMP) * 1.05
    rx = LABEL_W + bw / top
    out.append(f'<line x1="{rx:.1f}" y1="{TITLE_H - 4}" x2="{rx:.1f}" y2="{h - 6}" '
               f'stroke="#212529" stroke-dasharray="3,3"/>')
    for i, (label, v, t, unit, higher) in enumerate(rows):
        ry = TITLE_H + i * ROW_H
        out.append(f'<text x="{LABEL_W - 6}" y="{ry + 12}" text-anchor="end">{escape(label)}</text>')
        if v is None:
            out.append(f'<text x="{LABEL_W}" y="{ry + 12}" fill="{MUTED}">n/a</text>')
            continue
        length = bw * min(v / t, top) / top
        out.append(f'<rect x="{LABEL_W}" y="{ry}" width="{max(length, 1):.1f}" height="{BAR_H}" '
                   f'fill="{KAI}"/>')
        want = "≥" if higher else "<"
        out.append(text_by_bar(length, ry, f"{fmt(v)} {unit} (target {want} {fmt(t)})"))
    out.append("</g>")
    return "\n".join(out), h


def chart(d, report):
    inits = d["inits"]
    ref = d["reference"]
    panels = []
    wanted = {  # main-table row label prefix -> (panel title, unit)
        "start-up overhead, µs (median": ("start-up overhead (X -- /bin/true)", "µs"),
        "idle RSS": ("idle RSS", "KiB"),
        "idle wake-ups": ("idle wake-ups in %d s" % d["config"]["idle_seconds"], ""),
        "binary size": ("binary size (static builds)", "KiB"),
        "signal round trip p50, µs (init and child on one CPU)": ("signal round trip p50, one CPU", "µs"),
        "signal round trip p50, µs (on two CPUs)": ("signal round trip p50, two CPUs", "µs"),
        "reap ": ("reaping %s orphaned zombies as PID 1" % f"{d['config']['zombies']:,}", "ms"),
    }
    for label, vals, use_ratio in report.main_rows():
        for prefix, (title, unit) in wanted.items():
            if label.startswith(prefix):
                rows = [(n, vals[n]) for n in inits
                        if not (prefix == "binary size" and d["binaries"].get(n, {}).get("static") is False)]
                panels.append(("ratio", title, unit, rows, ref))
    h = d.get("health", {})
    if "na" not in h:
        clients = [c for c in h if c != "url"]
        for key, title in (("cpu_ns", "health check: CPU per check"), ("wall_ns", "health check: wall per check")):
            short = {"curl -fsS": "curl", "kai-init check (abstract socket)": "kai-init @socket"}
            rows = [(short.get(c, c), h[c][key] / 1e6 if key in h[c] else None) for c in clients]
            panels.append(("ratio", title, "ms", rows, "curl"))
    else:
        panels.append(("ratio", "health check: CPU per check", "ms",
                       [("kai-init check", None), ("curl", None), ("busybox wget", None)], "curl"))
    e = d.get("endpoint", {})
    ok = "na" not in e
    panels.append(("target", "health endpoint (wrk, one core)", [
        ("req/s", e["rps"] if ok else None, 50000, "req/s", True),
        ("RSS after", e["rss_after_kib"] if ok else None, 2048, "KiB", False),
    ]))

    body, col_y = [], [60] * COLS
    for p in panels:
        c = col_y.index(min(col_y))  # next panel goes to the shorter column
        x = GAP + c * (PW + GAP)
        if p[0] == "ratio":
            svg, ph = panel(x, col_y[c], p[1], p[2], p[3], p[4])
        else:
            svg, ph = target_panel(x, col_y[c], p[1], p[2])
        body.append(svg)
        col_y[c] += ph + GAP
    m = d["meta"]
    height = max(col_y) + 10
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{height}" '
            f'viewBox="0 0 {W} {height}" font-family="sans-serif" font-size="12">\n'
            f'<rect width="{W}" height="{height}" fill="white"/>\n'
            f'<text x="{GAP}" y="26" font-size="16" font-weight="bold">kai-init vs tini, dumb-init, catatonit'
            f'{" (QUICK smoke run)" if m["mode"] == "quick" else ""}</text>\n'
            f'<text x="{GAP}" y="46" fill="{MUTED}">{escape(m["date"])} · Linux {escape(m["kernel"])} · '
            f'{escape(m["cpu"])} · {m["nproc"]} CPUs · bars are ratios to the reference (dashed line = 1×)</text>\n')
    return head + "\n".join(body) + "\n</svg>\n"
