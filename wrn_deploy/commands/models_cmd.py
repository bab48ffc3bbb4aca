"""``wrn-deploy models``: the zoo as a table, with counts computed from the models themselves."""

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models(as_json: bool) -> None:
    """List the model zoo: parameters, multiply-accumulates per image and the paper's error."""
    import json

    from wrn_deploy.zoo import load_zoo

    rows = [_row(e) for e in load_zoo()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    head = ("recipe", "arch", "dataset", "params", "MACs/img", "epochs", "paper error")
    table = [head] + [(r["recipe"], r["arch"], r["dataset"], f"{r['params'] / 1e6:.1f}M",
                       f"{r['macs'] / 1e9:.2f}G", str(r["epochs"]),
                       "-" if r["paper_error"] is None else f"{r['paper_error']:.2f}%") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for i, row in enumerate(table):
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if i == 0:
            click.echo("  ".join("-" * w for w in widths))


def _row(entry) -> dict:
    import torch

    from wrn_deploy.arch import create_model, default_input_size
    from wrn_deploy.arch.stats import count_macs

    with torch.device("meta"):  # shapes only: no memory, no initialisation cost
        model = create_model(entry.arch, entry.num_classes)
        macs = count_macs(model, default_input_size(entry.arch))
    return {"recipe": entry.name, "arch": entry.arch, "dataset": entry.dataset,
            "params": sum(p.numel() for p in model.parameters()), "macs": macs,
            "epochs": entry.recipe.epochs, "paper_error": entry.paper_error,
            "paper_source": entry.paper_source}
