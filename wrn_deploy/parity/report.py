"""The eval report as a terminal table and as Markdown."""


def _rows(rep: dict) -> list:
    s = rep["stats"]
    return [("images", f"{rep['data']['images']} ({rep['data']['dataset']} {rep['data']['split']})"),
            ("top-1 reference / candidate", f"{s['ref_top1']:.2f}% / {s['cand_top1']:.2f}%"),
            ("top-5 reference / candidate", f"{s['ref_top5']:.2f}% / {s['cand_top5']:.2f}%"),
            ("top-1 difference (95% CI)", f"{s['diff']:+.2f} pts ({s['diff_ci95'][0]:+.2f}, {s['diff_ci95'][1]:+.2f})"),
            ("top-1 agreement", f"{s['agreement']:.2f}%"),
            ("flips ref-right/cand-wrong, reverse", f"{s['ref_only_right']}, {s['cand_only_right']}"),
            ("McNemar exact p", f"{s['mcnemar_p']:.3g}"),
            ("max / mean |logit difference|", f"{s['max_abs_logit_diff']:.3g} / {s['mean_abs_logit_diff']:.3g}")]


def terminal(rep: dict) -> str:
    c = rep["candidate"]
    head = f"{c['path']} ({c['precision']}, {c['runner']}) vs PyTorch FP32 {rep['reference']['path']}"
    rows = _rows(rep)
    w = max(len(k) for k, _ in rows)
    lines = [head] + [f"  {k:<{w}}  {v}" for k, v in rows]
    for g in rep["gates"]:
        lines.append(f"  gate {g['gate']}: measured {g['measured']:.3f} -> {'PASS' if g['passed'] else 'FAIL'}")
    lines.append("PASSED" if rep["passed"] else "FAILED")
    return "\n".join(lines)


def markdown(rep: dict) -> str:
    c = rep["candidate"]
    lines = [f"# Parity: {c['arch']} {c['precision']} ({c['runner']})", "",
             f"Candidate `{c['path']}` against PyTorch FP32 `{rep['reference']['path']}`.", "",
             "| measure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in _rows(rep)]
    lines += ["", "| gate | measured | result |", "|---|---|---|"]
    lines += [f"| {g['gate']} | {g['measured']:.3f} | {'pass' if g['passed'] else '**fail**'} |" for g in rep["gates"]]
    versions = ", ".join(f"{k} {v}" for k, v in rep["versions"].items())
    lines += ["", f"Overall: **{'PASSED' if rep['passed'] else 'FAILED'}**. Versions: {versions}.", ""]
    return "\n".join(lines)
