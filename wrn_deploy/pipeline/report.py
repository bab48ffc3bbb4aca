"""The pipeline's report: ``report.json`` is built from the step records; ``report.md`` and
``report.png`` are rendered from the JSON alone, so ``wrn-deploy report DIR`` can redraw them and
every table in the docs is generated."""

import json
from pathlib import Path

from wrn_deploy.parity.report import md

FORMAT = "wrn-deploy.report/1"


# --- JSON from the records -----------------------------------------------------------------------

def build_report(ctx) -> dict:
    from wrn_deploy.bench import machine
    from wrn_deploy.card import now, read_card, versions
    from wrn_deploy.pipeline import steps as S

    st = ctx.states
    ref = st.get("reference", {})
    rows = [_reference_row(ctx, ref)]
    for a in S.ONNX + S.PLANS + S.openvino_rows():
        rows.append(_artifact_row(ctx, a))
    serve = st.get("serve", {})
    for name, r in (serve.get("result") or {}).get("models", {}).items():
        rows.append({"artifact": f"{name} (served)", "file": f"triton/{r['model']}", "backend": r["runner"],
                     "precision": r["precision"], "bytes": None, "status": serve["status"], "stats": r["stats"],
                     "gates": r["gates"], "passed": r["passed"], "bench": r["bench"]})
    if ctx.opts.triton and serve.get("status") not in ("done", "cached"):
        rows.append({"artifact": "triton (served)", "backend": "triton", "status": serve.get("status", "blocked"),
                     "reason": serve.get("reason", "")})
    try:
        card = read_card(ctx.checkpoint)
        model = {"arch": card.arch, "classes": card.num_classes, "input_size": card.input_size,
                 "dataset": card.dataset.get("name"), "checkpoint": _rel(ctx, ctx.checkpoint),
                 "checkpoint_sha256": ctx.hashes(ctx.checkpoint)}
    except Exception:  # noqa: BLE001 - no checkpoint (training failed): the steps table says why
        model = {"arch": ctx.opts.arch, "dataset": ctx.opts.data}
    steps = [{"step": n, "status": s["status"], "seconds": s.get("seconds"), "reason": s.get("reason"),
              **({"rerun": s["rerun"]} if s.get("rerun") and s["status"] != "cached" else {})} for n, s in st.items()]
    gated = [r for r in rows if "passed" in r]
    return {"format": FORMAT, "created": now(), "machine": machine(), "device": ctx.device,
            "versions": versions("torch", "onnx", "onnxruntime", "openvino", "tensorrt", "tritonclient",
                                 "nvidia-pytriton"),
            "model": model, "data": (ref.get("result") or {}).get("data"),
            "training": (st.get("train", {}).get("result")), "calibration": _calibration(ctx),
            "gates": dict(ctx.opts.gates.__dict__), "rows": rows, "steps": steps,
            "failed_steps": [s["step"] for s in steps if s["status"] == "failed"],
            "passed": bool(gated) and all(r["passed"] for r in gated)
                      and not any(s["status"] == "failed" for s in steps)}


def _rel(ctx, path) -> str:
    """``path`` as seen from the report's folder (``../run/best.safetensors`` for a --checkpoint
    beside it, the file name for one further away): no folder of the machine that wrote it."""
    from wrn_deploy.fileio import named_from

    return named_from(Path(path).resolve(), ctx.out.resolve() / "report.json")


def _size(path) -> int | None:
    try:
        return Path(path).stat().st_size
    except OSError:
        return None


def _bench(ctx, name: str) -> dict | None:
    s = ctx.states.get(f"bench-{name}", {})
    return s.get("result") if s.get("status") in ("done", "cached") else None


def _reference_row(ctx, ref: dict) -> dict:
    r = ref.get("result") or {}
    return {"artifact": "checkpoint", "file": _rel(ctx, ctx.checkpoint), "backend": r.get("runner", "pytorch"),
            "precision": "fp32", "bytes": _size(ctx.checkpoint), "status": ref.get("status", "blocked"),
            "reason": ref.get("reason"), "reference": True,
            "stats": {"cand_top1": r.get("top1"), "cand_top5": r.get("top5")}, "bench": _bench(ctx, "pytorch")}


def _artifact_row(ctx, a) -> dict:
    made = ctx.states.get(a.step, {})
    ev = ctx.states.get(f"eval-{a.name}", {})
    row = {"artifact": a.name, "file": a.file, "backend": a.backend, "bytes": None, "status": made.get("status"),
           "reason": made.get("reason")}
    if made.get("status") not in ("done", "cached"):
        return row
    row["bytes"] = _size(ctx.artifact(a.name))
    if ev.get("status") not in ("done", "cached"):
        return {**row, "status": ev.get("status", "blocked"), "reason": f"eval: {ev.get('reason')}"}
    r = ev["result"]
    hint = r.get("precision_hint")
    precision = r["precision"] if not hint else f"{r['precision']}, computed {r.get('computed_in', r['precision'])}" \
        + (f" ({hint['requested']} asked)" if hint["requested"] != hint["ran"] else "")
    return {**row, "backend": r["runner"], "precision": precision, "status": ev["status"], "stats": r["stats"],
            "gates": r["gates"], "passed": r["passed"], "bench": _bench(ctx, a.name)}


def _calibration(ctx) -> dict | None:
    s = ctx.states.get("quantize-int8", {})
    c = (s.get("result") or {}).get("calibration")
    if not c:
        return None
    man = Path(c["manifest"])
    return {**c, "folder": _rel(ctx, c["folder"]), "manifest": _rel(ctx, man),
            "manifest_sha256": ctx.hashes(man) if man.is_file() else None,
            "guard": s["result"].get("guard"), "excluded_layers": s["result"].get("excluded_layers")}


# --- Markdown and plot from the JSON --------------------------------------------------------------

def _mb(n) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} MB"


def _pct(v) -> str:
    return "-" if v is None else f"{v:.2f}%"


def _verdict(row: dict) -> str:
    if "passed" not in row:
        return "reference" if row.get("reference") else "-"
    failed = [g for g in row["gates"] if not g["passed"]]
    return "pass" if not failed else "**FAIL** " + md(f"{failed[0]['gate']} (measured {failed[0]['measured']:.2f})")


def _row_md(row: dict) -> str:
    ok = row.get("status") in ("done", "cached")
    if not ok or "stats" not in row:
        why = md(f"{row.get('status')}: {row.get('reason') or ''}".rstrip(": "))
        return f"| {md(row['artifact'])} | {md(row.get('backend', ''))} | {md(row.get('precision', '-'))} | " \
               f"{_mb(row.get('bytes'))} | {why} |" + " |" * 9
    s, b = row["stats"], row.get("bench") or {}
    if row.get("reference"):
        paired = ["-"] * 4
    else:
        lo, hi = s["diff_ci95"]
        paired = [_pct(s["agreement"]), f"{s['ref_only_right']} / {s['cand_only_right']}", f"{s['mcnemar_p']:.3g}",
                  f"{s['diff']:+.2f} ({lo:+.2f}, {hi:+.2f})"]
    cells = [md(row["artifact"]), md(row["backend"]), md(row["precision"]), _mb(row.get("bytes")),
             _pct(s["cand_top1"]), _pct(s["cand_top5"]), *paired, _verdict(row),
             *(f"{b[k]:.2f}" if b.get(k) is not None else "-" for k in ("p50_ms", "p99_ms")),
             f"{b['images_per_s']:.0f}" if b.get("images_per_s") is not None else "-"]
    return "| " + " | ".join(cells) + " |"


HEADER = ("| artifact | backend | precision | size | top-1 | top-5 | agreement | flips lost / gained | McNemar p "
          "| top-1 diff, pts (95% CI) | gate | p50 ms | p99 ms | images/s |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def markdown(rep: dict, plot: str | None = "report.png") -> str:
    m, d, c = rep["model"], rep.get("data") or {}, rep.get("calibration")
    verdict = "**PASS**: every gate of every artifact" if rep["passed"] else \
        "**FAIL**: " + md(", ".join(rep["failed_steps"]) + " failed" if rep["failed_steps"] else "a gate failed")
    lines = [f"# Parity report: {md(m.get('arch'))} on {md(m.get('dataset'))}", "", verdict, "",
             f"- Machine: {md(rep['machine'].split(';')[0])}; device {md(rep['device'])}.",
             "- Versions: " + md(", ".join(f"{k} {v}" for k, v in rep["versions"].items())) + "."]
    if m.get("checkpoint_sha256"):
        lines.append(f"- Reference: PyTorch FP32 <code>{md(m['checkpoint'])}</code> "
                     f"(sha256 {m['checkpoint_sha256'][:16]}…), {m['classes']} classes at {m['input_size']} px.")
    if d:
        ident = d.get("identity") or {}
        lines.append(f"- Data: {d['images']} images of the {md(d['dataset'])} {md(d['split'])} split"
                     + (f" (sha256 of the split {md(str(ident['test_sha256'])[:16])}…)" if ident.get("test_sha256") else "")
                     + "; every artifact is scored on the same images, paired with the one reference run.")
    if c:
        g = c.get("guard") or {}
        how = f", {md(c['method'])} ranges" if c.get("method") else ""  # (reports before 0.6 name none)
        lines.append(f"- Calibration: {c['images']} images of the {md(c['split'])} split{how}, manifest "
                     f"<code>{md(c['manifest'])}</code> (sha256 {md(str(c.get('manifest_sha256'))[:16])}…); "
                     f"INT8 guard on {g.get('images')} held-out images: drop {g.get('drop', 0):+.2f} pts.")
    if rep.get("gates"):
        lines.append(_gates_line(rep["gates"]))
    lines += ["- Latency: one image per request (p50, p99); throughput: batches of 32, images per second.", "",
              HEADER, *(_row_md(r) for r in rep["rows"]), ""]
    if plot:
        lines += [f"![top-1 difference and speed per artifact]({plot})", ""]
    lines += ["## Steps", "", "| step | status | seconds | note |", "|---|---|---|---|"]
    for s in rep["steps"]:
        secs = "-" if s.get("seconds") is None else f"{s['seconds']:.1f}"
        note = " ".join(filter(None, [s.get("reason"), s.get("rerun") and f"ran again: {s['rerun']}"]))
        lines.append(f"| {md(s['step'])} | {md(s['status'])} | {secs} | {md(note)} |")
    return "\n".join(lines) + "\n"


def _gates_line(g: dict) -> str:
    """The gates the verdicts apply (limits.py): INT8 needs its agreement as well as the drop."""
    int8 = f"INT8 drop <= {g['int8_max_drop']:g} pts" if g.get("int8_max_drop") is not None else "INT8 drop unchecked"
    if g.get("int8_min_agreement") is not None:
        int8 += f" and agreement >= {g['int8_min_agreement']:g}%"
    bf16 = f"; BF16 agreement >= {g['bf16_min_agreement']:g}%" if g.get("bf16_min_agreement") is not None else ""
    return (f"- Gates: FP32 agreement >= {g['fp32_min_agreement']:g}%; FP16 agreement >= "
            f"{g['fp16_min_agreement']:g}%; {int8} (drop certified only where the images resolve it){bf16}.")


def plot(rep: dict, path: Path) -> bool:
    """Left: each artifact's top-1 difference from the reference with its 95% interval; right:
    latency against throughput. False when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from wrn_deploy.fileio import atomic_output

    scored = [r for r in rep["rows"] if "passed" in r]
    timed = [r for r in rep["rows"] if (r.get("bench") or {}).get("p50_ms") is not None]
    if not scored and not timed:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.45 * max(len(scored), 4) + 1.5))
    for i, r in enumerate(scored):
        s = r["stats"]
        lo, hi = s["diff_ci95"]
        left.errorbar(s["diff"], i, xerr=[[s["diff"] - lo], [hi - s["diff"]]], fmt="o",
                      color="tab:green" if r["passed"] else "tab:red", capsize=3)
    left.axvline(0, color="grey", lw=0.8)
    left.set_yticks(range(len(scored)), [f"{r['artifact']} ({r['precision']})" for r in scored])
    left.invert_yaxis()
    left.set_xlabel("top-1 minus PyTorch FP32, points (95% CI)")
    for r in timed:
        b = r["bench"]
        right.scatter(b["p50_ms"], b["images_per_s"])
        right.annotate(r["artifact"], (b["p50_ms"], b["images_per_s"]), fontsize=8, xytext=(3, 3),
                       textcoords="offset points")
    right.set_xlabel("latency p50, ms (batch 1)")
    right.set_ylabel("images/s (batch 32)")
    fig.suptitle(f"{rep['model'].get('arch')} on {rep['model'].get('dataset')}: {rep['machine'].split(';')[0][:90]}",
                 fontsize=8)
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return True


def write_report(out: Path, rep: dict) -> None:
    from wrn_deploy.fileio import write_json

    write_json(out / "report.json", rep)
    render(out)


def render(folder: Path) -> Path:
    """report.md and report.png of ``folder`` from its report.json."""
    from wrn_deploy.errors import UserError
    from wrn_deploy.fileio import write_text

    src = Path(folder) / "report.json"
    try:
        rep = json.loads(src.read_text())
    except OSError as e:
        raise UserError(f"{src}: cannot read it ({e.strerror}); is {folder} a pipeline's output folder?") from None
    except ValueError as e:
        raise UserError(f"{src} is not JSON ({e})") from None
    if not isinstance(rep, dict) or rep.get("format") != FORMAT:
        raise UserError(f"{src} is not a wrn-deploy pipeline report ({FORMAT})")
    try:
        markdown(rep, None)  # a malformed report fails here, before report.png is drawn
        drawn = plot(rep, Path(folder) / "report.png")
        text = markdown(rep, "report.png" if drawn else None)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise UserError(f"{src} is malformed ({type(e).__name__}: {e})") from None
    write_text(Path(folder) / "report.md", text)
    return Path(folder) / "report.md"
