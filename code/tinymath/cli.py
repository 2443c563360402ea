"""The `tinymath` command: one subcommand per pipeline stage (its name), plus `run` (a whole profile) and `compare`.

    tinymath synth --profile cpu                # embedded offline datasets
    tinymath tokenizer --profile cpu
    tinymath prepare --profile cpu              # filter, dedup, mix, decontaminate, pack
    tinymath prepare --profile paper --dry-run  # its plan and job layout, offline
    tinymath pretrain --profile cpu [--dry-run | --print-batch 10]
    tinymath convert | sft | grpo | dpo | eval | report --profile cpu
    tinymath eval --model PATH_OR_HUB_ID[@REVISION] --name NAME --profile paper   # any HF causal LM
    tinymath chat --model sft --profile cpu [--prompt "What is 12 * 7?"]
    tinymath report figures --results results/cpu --out figures
    tinymath compare runs/cpu/report/results results/cpu
    tinymath variance --profile cpu --seeds 3   # seed-to-seed spread of the verdict metrics
    tinymath run --profile cpu [--from sft] [--force] [--plan]

`--config FILE` names a config directly (its file stem is the profile); `--set key.sub=value` overrides one field.
Bad input prints one line and exits with status 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tinymath import log, paths, runner
from tinymath.config import load_config
from tinymath.errors import UserError

EXIT_USAGE = 2
EXIT_FAILURE = 1


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
    stages = {spec.name: sub.add_parser(spec.name, help=spec.help) for spec in runner.PIPELINE}
    for p in stages.values():
        _stage_options(p)
    pretrain = stages["pretrain"].add_mutually_exclusive_group()
    pretrain.add_argument("--dry-run", action="store_true",
                          help="compile the train step abstractly for the config's mesh and print memory and time")
    pretrain.add_argument("--print-batch", type=int, metavar="STEP",
                          help="print the documents of the pretraining batch at STEP")
    evaluation = stages["eval"]
    evaluation.add_argument("--model", help="evaluate this Hugging Face model (a directory, or a hub id with optional "
                                            "@revision) instead of the stages' models")
    evaluation.add_argument("--name", help="its name in runs/<profile>/eval-models/ "
                                           "(default: the last part of --model)")
    prepare = stages["prepare"]
    prepare.add_argument("--dry-run", action="store_true",
                         help="print the plan (sources, steps, tasks, output shards and bytes, executor jobs) offline; "
                              "slurm: also write its sbatch scripts")
    prepare.add_argument("--out", type=Path, help="--dry-run: folder for the sbatch scripts "
                                                  "(default: <runs>/<profile>/prepare-plan)")
    report = stages["report"]
    report.add_argument("action", nargs="?", choices=["collect", "figures", "paper", "publish"], default="collect",
                        help="collect: results of a profile's runs (the stage); figures/paper: from --results; "
                             "publish: copy a run's results into results/<profile>")
    report.add_argument("--results", type=Path, help="results directory to read (figures, paper)")
    report.add_argument("--out", type=Path, help="output directory (figures, paper)")
    report.add_argument("--allow-dirty", action="store_true",
                        help="publish results produced from uncommitted changes (their diff's sha256 is recorded)")

    compare = sub.add_parser("compare", help="reproduction verdict: fresh results vs committed results")
    compare.add_argument("fresh", type=Path, help="results of a fresh run, e.g. runs/cpu/report/results")
    compare.add_argument("committed", type=Path, help="committed results, e.g. results/cpu")
    compare.add_argument("--out", type=Path, help="verdict JSON (default: verdict.json beside the fresh results)")

    chat = sub.add_parser("chat", help="chat with a model in the terminal (streamed, through its chat template)")
    chat.add_argument("--model", required=True,
                      help="base, sft, grpo, dpo (the profile's stage model) or a model directory")
    chat.add_argument("--profile", default="cpu")
    chat.add_argument("--prompt", help="answer this one message and exit")
    chat.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0: greedy)")
    chat.add_argument("--max-new-tokens", type=int, default=512)
    chat.add_argument("--runs", type=Path)

    variance = sub.add_parser("variance", help="seed-to-seed spread of every verdict metric -> variance.json")
    variance.add_argument("--profile", default="cpu")
    variance.add_argument("--seeds", type=int, default=3, help="number of seeds, the profile's own run included")
    variance.add_argument("--from", dest="start", default="pretrain", choices=list(runner.STAGES),
                          help="rerun the stages from this one under each seed (default: pretrain)")
    variance.add_argument("--runs", type=Path)
    variance.add_argument("--out", type=Path, help="directory for variance.json (default: results/<profile>)")

    run = sub.add_parser("run", help="run every stage of a profile in order")
    run.add_argument("--profile", default="cpu")
    run.add_argument("--from", dest="start", choices=list(runner.STAGES),
                     help="start at this stage (earlier stages must have manifests)")
    run.add_argument("--force", action="store_true")
    run.add_argument("--plan", action="store_true", help="print each stage's inputs and state; run nothing")
    run.add_argument("--runs", type=Path)
    return parser


def _config(args: argparse.Namespace, stage: str) -> Path:
    return args.config or runner.config_path(stage, args.profile)


def dispatch(args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "run" and args.plan:
        print("\n".join(runner.plan(args.profile, runs=args.runs)))
        return 0
    if cmd == "run":
        runner.run_profile(args.profile, start=args.start, force=args.force, runs=args.runs)
        return 0
    if cmd == "variance":
        from tinymath.report import variance

        variance.main(args.profile, args.seeds, args.start, runs=args.runs, out=args.out)
        return 0
    if cmd == "chat":
        from tinymath import chat

        sampling = chat.Sampling(max_new_tokens=args.max_new_tokens, temperature=args.temperature)
        chat.main(args.model, args.profile, args.prompt, sampling, runs=args.runs)
        return 0
    if cmd == "eval" and args.model:
        from tinymath.eval import Config, external

        path = _config(args, "eval")
        cfg = load_config(path, Config, args.overrides)
        runner.check_requirements(cfg.requires, path)  # the paper profile evaluates on a GPU, as its stages do
        name = args.name or args.model.partition("@")[0].rstrip("/").split("/")[-1]
        external.main(cfg, args.model, name, runner.profile_of(path), args.runs)
        return 0
    if cmd == "compare":
        from tinymath.report import compare

        return compare.main(args.fresh, args.committed, args.out)
    if cmd == "pretrain" and (args.dry_run or args.print_batch is not None):
        from tinymath import pretrain

        path = _config(args, "pretrain")
        cfg = load_config(path, pretrain.Config, args.overrides)
        if args.dry_run:
            pretrain.dry_run(cfg)
        else:  # the batch order is the pretraining loader's
            pretrain.print_batch(cfg, (args.runs or paths.runs_root()) / runner.profile_of(path), args.print_batch)
        return 0
    if cmd == "prepare" and args.dry_run:
        from tinymath import prepare

        path = _config(args, "prepare")
        root = (args.runs or paths.runs_root()) / runner.profile_of(path)
        cfg = load_config(path, prepare.Config, args.overrides)
        print("\n".join(prepare.dry_run(cfg, root, args.out or root / "prepare-plan")))
        return 0
    if cmd == "report" and args.action != "collect":
        from tinymath import report

        return report.command(args.action, profile=runner.profile_of(_config(args, "report")),
                              results=args.results, out=args.out, runs=args.runs, allow_dirty=args.allow_dirty)
    runner.run_stage(cmd, _config(args, cmd), args.overrides, force=args.force, runs=args.runs)
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
    except OSError as e:  # the machine, not the input: a full disk, a permission, a path that is a file
        where = f": {e.filename}" if e.filename else ""
        print(f"tinymath: error: {e.strerror or e}{where}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
