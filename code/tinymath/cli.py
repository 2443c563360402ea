"""The `tinymath` command: one subcommand per pipeline stage, plus `run` (a whole profile) and `compare`.

    tinymath data synth --profile cpu           # embedded offline datasets
    tinymath tokenizer --profile cpu
    tinymath data prepare --profile cpu         # filter, dedup, mix, decontaminate, pack
    tinymath data batch --profile cpu --step 10 # the documents pretraining sees at step 10
    tinymath pretrain --profile cpu [--dry-run]
    tinymath convert | sft | grpo | eval | report --profile cpu
    tinymath report figures --results results/cpu --out figures
    tinymath compare runs/cpu/report/results results/cpu
    tinymath run --profile cpu [--from sft] [--force]

`--config FILE` names a config directly (its file stem is the profile); `--set key.sub=value` overrides one field.
Bad input prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinymath import log, runner
from tinymath.config import load_config
from tinymath.errors import UserError

EXIT_USAGE = 2


def _stage_options(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", type=Path, help="config file (default: configs/<stage>/<profile>.yaml)")
    src.add_argument("--profile", default="cpu", help="smoke, cpu or paper (default: cpu)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one config field, e.g. --set optimizer.lr=1e-4 (repeatable)")
    p.add_argument("--force", action="store_true", help="rerun even when the stage is up to date")
    p.add_argument("--runs", type=Path, help="root of run directories (default: runs/ or $TINYMATH_RUNS)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tinymath", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="offline datasets and the packed pretraining corpus")
    data_sub = data.add_subparsers(dest="action", required=True, metavar="ACTION")
    _stage_options(data_sub.add_parser("synth", help="generate the embedded GSM8K/MATH-format data and corpus"))
    _stage_options(data_sub.add_parser("prepare", help="filter, dedup, mix, decontaminate, tokenise and pack"))
    batch = data_sub.add_parser("batch", help="print the documents of the pretraining batch at a step "
                                "(--config/--profile name the pretrain config)")
    _stage_options(batch)
    batch.add_argument("--step", type=int, required=True)

    for name, help_ in [("tokenizer", "train the digit-split byte-level BPE tokenizer"),
                        ("pretrain", "pretrain the Llama model in JAX"),
                        ("convert", "convert the JAX checkpoint to Hugging Face and prove logit parity"),
                        ("sft", "supervised fine-tuning with TRL (ChatML, assistant-only loss)"),
                        ("grpo", "GRPO with verifiable rewards (TRL)"),
                        ("eval", "evaluate every stage's model with lm-evaluation-harness")]:
        p = sub.add_parser(name, help=help_)
        _stage_options(p)
        if name == "pretrain":
            p.add_argument("--dry-run", action="store_true",
                           help="compile the train step abstractly for the config's mesh and print memory and time")

    report = sub.add_parser("report", help="collect results; regenerate figures and the paper")
    _stage_options(report)
    report.add_argument("action", nargs="?", choices=["collect", "figures", "paper", "publish"], default="collect",
                        help="collect: results of a profile's runs (the stage); figures/paper: from --results; "
                             "publish: copy a run's results into results/<profile>")
    report.add_argument("--results", type=Path, help="results directory to read (figures, paper)")
    report.add_argument("--out", type=Path, help="output directory (figures, paper)")

    compare = sub.add_parser("compare", help="reproduction verdict: fresh results vs committed results")
    compare.add_argument("fresh", type=Path, help="results of a fresh run, e.g. runs/cpu/report/results")
    compare.add_argument("committed", type=Path, help="committed results, e.g. results/cpu")

    run = sub.add_parser("run", help="run every stage of a profile in order")
    run.add_argument("--profile", default="cpu")
    run.add_argument("--from", dest="start", choices=[s.name for s in runner.PIPELINE],
                     help="start at this stage (earlier stages must have manifests)")
    run.add_argument("--force", action="store_true")
    run.add_argument("--runs", type=Path)
    return parser


def _config(args: argparse.Namespace, stage: str) -> Path:
    return args.config or runner.config_path(stage, args.profile)


def dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "run":
        runner.run_profile(args.profile, start=args.start, force=args.force, runs=args.runs)
        return 0
    if cmd == "compare":
        from tinymath.report import compare

        return compare.main(args.fresh, args.committed)
    if cmd == "data" and args.action == "batch":
        from tinymath import pretrain

        path = _config(args, "pretrain")  # the batch order is the pretraining loader's
        cfg = load_config(path, pretrain.Config, args.overrides)
        pretrain.print_batch(cfg, (args.runs or runner.paths.runs_root()) / runner.profile_of(path), args.step)
        return 0
    if cmd == "pretrain" and args.dry_run:
        from tinymath import pretrain

        path = _config(args, "pretrain")
        pretrain.dry_run(load_config(path, pretrain.Config, args.overrides))
        return 0
    if cmd == "report" and args.action != "collect":
        from tinymath import report

        return report.command(args.action, profile=runner.profile_of(_config(args, "report")),
                              results=args.results, out=args.out, runs=args.runs)
    stage = {"data": {"synth": "synth", "prepare": "data"}.get(getattr(args, "action", ""))}.get(cmd, cmd)
    runner.run_stage(stage, _config(args, stage), args.overrides, force=args.force, runs=args.runs)
    return 0


def main(argv: list[str] | None = None) -> int:
    log.setup_console()
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except UserError as e:
        print(f"tinymath: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("tinymath: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
