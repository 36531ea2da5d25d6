"""``presample show IMAGE``: how an image's prompt was made, read from the image.

The ComfyUI nodes and the A1111 extension keep a record in the PNG they save:
the request as run (its seed drawn), the prompt it gave, the model and a hash
of its weights, the engine. This prints it, and --request FILE writes the
request so that 'presample --request FILE --model MODEL' makes the same prompt
again (same model, same engine).

The record's format is presample/record.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .common import UserError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "show",
        help="how an image's prompt was made (the record presample kept in the PNG)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
        epilog="example: presample show ComfyUI_00001_.png --request req.json && "
        "presample --request req.json --model default",
    )
    p.add_argument("image", type=Path, help="a PNG saved by ComfyUI or A1111 / Forge")
    p.add_argument("--request", type=Path, metavar="FILE",
                   help="write the (first) record's request here, to run it again")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the records as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..integrations.a1111 import record_from_infotext
    from ..record import A1111_KEY, read_records

    records, chunks = read_records(args.image)
    if not records and A1111_KEY in chunks:
        found = record_from_infotext(chunks[A1111_KEY])
        records = [found] if found is not None else []
    if not records:
        raise UserError(
            f"{args.image}: no presample record (it was not made with presample's ComfyUI "
            "nodes or A1111 extension, or its metadata was stripped)"
        )
    if args.request is not None:
        if args.request.exists() and not args.request.is_file():
            raise UserError(f"{args.request}: not a file")
        request = records[0].request.model_dump(mode="json", exclude_defaults=True)
        args.request.write_text(json.dumps(request, indent=2, ensure_ascii=False) + "\n",
                                encoding="utf-8")  # fmt: skip
    if args.json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2,
                         ensure_ascii=False))  # fmt: skip
        return 0
    for i, record in enumerate(records):
        if i:
            print()
        where = "A1111 infotext" if record.source == "a1111" else "presample record"
        model = record.model + (f" (weights {record.model_hash})" if record.model_hash else "")
        print(f"model:   {model or 'unknown'}" + (f" on {record.engine}" if record.engine else ""))
        print(f"seed:    {record.request.seed}")
        print(f"input:   {record.request.prompt}")
        if record.prompt:
            print(f"prompt:  {record.prompt}")
        print(f"from:    {where}, presample {record.presample}")
    if args.request is not None:
        print(f"\nrequest written to {args.request}; run it again with: presample --request "
              f"{args.request} --model {records[0].model or 'MODEL'}", file=sys.stderr)  # fmt: skip
    return 0
