"""The eval report as a terminal table and as Markdown.

Strings that come from cards and paths are untrusted: control characters (terminal escapes) are
dropped everywhere, and HTML and table syntax are escaped in Markdown.
"""

import html
import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain(text) -> str:
    """``text`` without control characters (no terminal escape sequences survive)."""
    return _CONTROL.sub("", str(text))


def md(text) -> str:
    """``text`` safe inside a Markdown table cell or paragraph."""
    return html.escape(plain(text)).replace("|", "&#124;").replace("`", "&#96;").replace("*", "&#42;")


def _rows(rep: dict) -> list:
    s, d = rep["stats"], rep["data"]
    rows = [("images", f"{d['images']} ({d['dataset']} {d['split']})"),
            ("top-1 reference / candidate", f"{s['ref_top1']:.2f}% / {s['cand_top1']:.2f}%"),
            ("top-5 reference / candidate", f"{s['ref_top5']:.2f}% / {s['cand_top5']:.2f}%"),
            ("top-1 difference (95% CI)", f"{s['diff']:+.2f} pts ({s['diff_ci95'][0]:+.2f}, {s['diff_ci95'][1]:+.2f})"),
            ("top-1 agreement", f"{s['agreement']:.2f}%"),
            ("flips ref-right/cand-wrong, reverse", f"{s['ref_only_right']}, {s['cand_only_right']}"),
            ("McNemar exact p", f"{s['mcnemar_p']:.3g}"),
            ("max / mean |logit difference|", f"{s['max_abs_logit_diff']:.3g} / {s['mean_abs_logit_diff']:.3g}")]
    hint = rep["candidate"].get("precision_hint")
    if hint:
        note = "" if hint["requested"] == hint["ran"] else \
            f" ({hint['requested']} requested: the CPU has no {hint['requested'].upper()} instructions, so OpenVINO used {hint['ran']})"
        rows.append(("OpenVINO computed float layers in", hint["ran"] + note))
    if rep.get("machine"):
        m = rep["machine"]
        rows.append(("CPU", f"{m['cpu'] or 'unknown'}, {m['logical_cpus']} logical CPUs; {m['instruction_set']}"))
    if d.get("classes"):
        names = d["classes"]
        rows.append(("classes", f"{len(names)}: " + ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")))
    if d.get("calibration_overlap"):
        rows.append(("calibration images scored (allowed)", f"{d['calibration_overlap']} of {d['images']}: "
                     "this score is biased in the model's favour"))
    if d.get("skipped_unreadable"):
        rows.append(("unreadable images skipped", str(d["skipped_unreadable"])))
    return rows


def terminal(rep: dict) -> str:
    c = rep["candidate"]
    head = f"{c['path']} ({c['precision']}, {c['runner']}) vs PyTorch FP32 {rep['reference']['path']}"
    rows = _rows(rep)
    w = max(len(k) for k, _ in rows)
    lines = [head] + [f"  {k:<{w}}  {v}" for k, v in rows]
    for g in rep["gates"]:
        lines.append(f"  gate {g['gate']}: measured {g['measured']:.3f} -> {'PASS' if g['passed'] else 'FAIL'}")
    lines.append("PASSED" if rep["passed"] else "FAILED")
    return "\n".join(plain(line) for line in lines)


def markdown(rep: dict) -> str:
    c = rep["candidate"]
    lines = [f"# Parity: {md(c['arch'])} {md(c['precision'])} ({md(c['runner'])})", "",
             f"Candidate <code>{md(c['path'])}</code> against PyTorch FP32 <code>{md(rep['reference']['path'])}</code>.",
             "", "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {md(v)} |" for k, v in _rows(rep)]
    lines += ["", "| gate | measured | result |", "|---|---|---|"]
    lines += [f"| {md(g['gate'])} | {g['measured']:.3f} | {'pass' if g['passed'] else '**fail**'} |"
              for g in rep["gates"]]
    versions = ", ".join(f"{md(k)} {md(v)}" for k, v in rep["versions"].items())
    lines += ["", f"Overall: **{'PASSED' if rep['passed'] else 'FAILED'}**. Versions: {versions}.", ""]
    return "\n".join(lines)
