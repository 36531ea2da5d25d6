"""``presample run``: presample a file of requests, resumably, here or on Ray."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from ..jobs.job import Job, JobRun
from .common import UserError
from .model_options import add_model_options, load_settings

DESCRIPTION = """\
Presample every request of a file: JSON Lines (one request object per line,
the same JSON as the Python API; a bare string is a prompt) or Parquet (one
column per request field: prompt, nl_prompt, seed ...; other columns are left
out and named once). A row is known by its number, "line": the JSON Lines line,
or the Parquet row counted from 1.

Results go to the output as each request finishes: JSON Lines, one object per
row, {"line": N, "result": {...}} or {"line": N, "error": "..."}; or, for an
output named *.parquet, a folder of Parquet parts with the columns line,
prompt, tags_prompt, text_prompt, seed, error and result (the whole result as
JSON), a part every 256 rows or 30 seconds.

Re-running the command resumes: rows already answered in the output are
skipped, rows torn by a kill are dropped and done again, and an existing
output that this command did not write is never touched.

With --workers or --address the rows run on Ray Data (pip extra presample[ray]):
one model per worker, --batch-size rows per worker call. Without --address a
local Ray starts in this process; with it the job joins that cluster (presample
and the model must be installed on every node). A row's result is the same
whichever worker runs it, and the same as without Ray, when its seed is fixed
(in the request or by --seed).

Exit status: 0 when every request has a result in the output, 1 when any has an
error row (from this run or an earlier one), 2 for bad options or files.
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="presample a file of requests (JSON Lines or Parquet; batched, resumable, Ray)",
        description=DESCRIPTION,
        epilog="examples:\n"
        "  presample run requests.jsonl -o results.jsonl --batch-size 32\n"
        "  presample run prompts.parquet -o results.parquet --workers 2 --seed 0\n"
        "  presample run prompts.parquet -o results.parquet --address ray://head:10001",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("requests", help="JSON Lines or Parquet file of requests")
    p.add_argument(
        "-o", "--output", required=True,
        help="JSON Lines file, or a *.parquet folder, to write (added to when resuming)",
    )  # fmt: skip
    p.add_argument(
        "--batch-size",
        type=int,
        default=32,
        help="requests sharing forward passes at once, per worker (default 32)",
    )
    p.add_argument("--seed", type=int, help="seed for requests that do not set one")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    ray = p.add_argument_group("Ray (pip extra presample[ray])")
    ray.add_argument(
        "--workers", type=int,
        help="model workers on Ray; alone: a local Ray in this process "
        "(default with --address: one per --cpus-per-worker of the cluster's CPUs)",
    )  # fmt: skip
    ray.add_argument("--address", help="an existing Ray cluster: host:port or ray://host:port")
    ray.add_argument(
        "--cpus-per-worker", type=float,
        help="CPUs (engine threads) per worker (default: local CPUs shared out; 1 on a cluster)",
    )  # fmt: skip
    add_model_options(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.workers is not None and args.workers < 1:
        raise UserError("--workers must be at least 1")
    if args.cpus_per_worker is not None and args.cpus_per_worker <= 0:
        raise UserError("--cpus-per-worker must be more than 0")
    on_ray = args.workers is not None or args.address is not None
    job = Job(Path(args.requests), Path(args.output), batch_size=args.batch_size, seed=args.seed)

    work = job.open()
    target = job.output
    if work.ignored_columns:
        print(f"presample: left out the columns that are no request field: "
              f"{', '.join(work.ignored_columns)}", file=sys.stderr)  # fmt: skip
    if not work.todo:
        print(f"nothing to do: all {work.total} requests are in {target}", file=sys.stderr)
        if work.failed:
            print(f'{work.failed} of them failed; see the "error" rows in {target}',
                  file=sys.stderr)  # fmt: skip
        return 1 if work.failed else 0
    try:
        if on_ray:
            from ..jobs.ray_job import Cluster, ray_console, run_on_ray

            cluster = Cluster(args.address, args.workers, args.cpus_per_worker)
            with ray_console() as terminal, _progress(args, work, terminal):
                run_on_ray(work, load_settings(args), cluster, batch_size=args.batch_size)
        elif any(not isinstance(r, str) for _, r in work.todo):
            from ..jobs.job import run_local
            from .model_options import open_presampler

            with _progress(args, work, sys.stderr), open_presampler(args) as presampler:
                run_local(work, presampler, batch_size=args.batch_size)
        else:
            work.requests()  # every row left is invalid: no model needed
    finally:
        work.close()
    if work.failed:
        print(f'{work.failed} request(s) failed; see the "error" rows in {target}',
              file=sys.stderr)  # fmt: skip
    return 1 if work.failed else 0


@contextlib.contextmanager
def _progress(args: argparse.Namespace, work: JobRun, stream: TextIO) -> Iterator[None]:
    from tqdm import tqdm

    with tqdm(total=work.total, initial=work.skipped, unit="prompt",
              disable=args.no_progress, file=stream) as bar:  # fmt: skip
        work.on_row = lambda line, failed: bar.update(1)
        yield
