"""``presample tags``: look tags up in the shipped database."""

from __future__ import annotations

import argparse
import json

from ..tagdb import TagDatabase, TagInfo
from .common import UserError

MAX_QUERY_TAGS = 100_000


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tags",
        help="look up canonical names, categories and popularity of tags",
        description="Query the tag database shipped with presample (Danbooru, end of 2024).",
    )
    tsub = p.add_subparsers(dest="tags_command", metavar="COMMAND", required=True)

    lookup = tsub.add_parser(
        "lookup",
        help="canonical name, category and post count of each TAG",
        description="Resolve each TAG (any case, underscores or spaces, A1111 escapes, "
        "aliases) to its canonical name, category and Danbooru post count. "
        "Exit status 1 when any tag is unknown.",
        epilog="example: presample tags lookup Hatsune_Miku 'ganyu \\(genshin impact\\)' boobs",
    )
    lookup.add_argument("tag", nargs="+", help="tags to resolve (quote tags with spaces)")
    lookup.add_argument("--json", action="store_true", help="one JSON object per line")
    lookup.set_defaults(handler=run_lookup)

    search = tsub.add_parser(
        "search",
        help="most popular tags starting with PREFIX",
        description="List the most popular tags whose name or alias starts with PREFIX.",
    )
    search.add_argument("prefix")
    search.add_argument("-n", "--limit", type=int, default=20, help="how many (default 20)")
    search.add_argument("--json", action="store_true", help="one JSON object per line")
    search.set_defaults(handler=run_search)

    info = tsub.add_parser("info", help="where the database came from and what it holds")
    info.set_defaults(handler=run_info)


def _print(query: str, info: TagInfo | None, as_json: bool) -> None:
    if as_json:
        row = {"query": query, "found": info is not None}
        if info is not None:
            row.update(info.to_dict())
        print(json.dumps(row, ensure_ascii=False))
    elif info is None:
        print(f"{query}\t(unknown)")
    else:
        alias = "  (alias)" if info.alias else ""
        print(f"{info.name}\t{info.category.value}\t{info.post_count}{alias}")


def run_lookup(args: argparse.Namespace) -> int:
    if len(args.tag) > MAX_QUERY_TAGS:
        raise UserError(f"at most {MAX_QUERY_TAGS} tags per lookup")
    with TagDatabase() as db:
        infos = db.lookup_many(args.tag)
    for query, info in zip(args.tag, infos, strict=True):
        _print(query, info, args.json)
    return 0 if all(infos) else 1


def run_search(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= 1000:
        raise UserError("--limit must be between 1 and 1000")
    with TagDatabase() as db:
        rows = db.search_prefix(args.prefix, args.limit)
    for info in rows:
        _print(args.prefix, info, args.json)
    return 0 if rows else 1


def run_info(args: argparse.Namespace) -> int:
    with TagDatabase() as db:
        for key, value in sorted(db.info().items()):
            print(f"{key}: {value}")
        print(f"path: {db.path}")
    return 0
