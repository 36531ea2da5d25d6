"""How often TIPO v2's GGUF splits a tag differently from its ``tokenizer.json``.

    python benchmarks/bench_v2_tokenizer.py [--examples 12]

The publisher's GGUF says ``tokenizer.ggml.pre=default``, so llama.cpp splits
text before BPE with its default (GPT-2-like) rules, while ``tokenizer.json``
splits it with DeepSeek's (digits in threes, CJK runs, a punctuation mark glued
to the letters after it): spec/TIPO_V2.md §6, open question 3. Where the two
splits differ, the token ids differ, whatever the merges; where they agree the
same merges give the same ids. So the share of tags split differently bounds
how often the GGUF path feeds the model ids it never saw in training. Counted
over every tag of the tag database as it appears on a tag line (after ", "),
and weighted by how often Danbooru uses each tag.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from presample.engine.dots1 import LLAMACPP_DEFAULT_SPLITS  # noqa: E402
from presample.tagdb import default_db_path, display_name  # noqa: E402
from presample.training.tipo_v2 import DEEPSEEK_SPLITS  # noqa: E402


def splitter(patterns: tuple[str, ...]):
    from tokenizers import Regex, pre_tokenizers

    sequence = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(p), behavior="isolated") for p in patterns]
    )
    return lambda text: [piece for piece, _ in sequence.pre_tokenize_str(text)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=12)
    args = parser.parse_args()
    deepseek, gguf = splitter(DEEPSEEK_SPLITS), splitter(LLAMACPP_DEFAULT_SPLITS)
    with sqlite3.connect(default_db_path()) as db:
        rows = db.execute("SELECT name, post_count FROM tag").fetchall()
    differ = differ_weight = total_weight = 0
    examples: list[tuple[int, str, list[str], list[str]]] = []
    for raw, count in rows:
        text = " " + display_name(raw)  # as on a tag line: ", <tag>"
        a, b = deepseek(text), gguf(text)
        total_weight += count
        if a != b:
            differ += 1
            differ_weight += count
            examples.append((count, text.strip(), a, b))
    print(f"tags: {len(rows)}; split differently: {differ} ({differ / len(rows):.1%}), "
          f"{differ_weight / total_weight:.1%} of tag uses (weighted by post count)")  # fmt: skip
    line = ", ".join(display_name(r[0]) for r in sorted(rows, key=lambda r: -r[1])[:40])
    same = deepseek("tag: " + line) == gguf("tag: " + line)
    print(f"a tag line of the 40 most used tags split alike: {same}")
    print("most used tags split differently (tokenizer.json | GGUF):")
    for count, tag, a, b in sorted(examples, reverse=True)[: args.examples]:
        print(f"  {tag!r:<32} {count:>9}  {'|'.join(a)!r}  vs  {'|'.join(b)!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
