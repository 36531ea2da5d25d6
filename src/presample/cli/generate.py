"""``presample PROMPT``: presample one prompt and print the result."""

from __future__ import annotations

import argparse
import json
import sys

from pydantic import ValidationError

from ..formatting import TEMPLATES, TYPED_TEMPLATE, Target
from ..request import BanRule, PresampleRequest, PresampleResult, describe_validation_error
from ..tipo import Length
from .common import UserError, parse_request_json, read_text
from .model_options import add_model_options, open_presampler

DESCRIPTION = """\
Presample one prompt: the few tags or the short sentence you type become the
detailed prompt the image model was trained on. Weights like (smile:1.2),
BREAK and <lora:...> are kept out of the model and come back in place.
"""

EPILOG = """\
examples:
  presample "1girl, scenery"
  presample "a cat sitting on a windowsill" --nl-length short --seed 7
  presample "1girl, hatsune miku" --ban-category artist --ban "red hair" --json
  presample --request req.json --model KBlueLeaf/TIPO-200M-ft2
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help='presample one prompt (also: presample "PROMPT")',
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("prompt", nargs="?", help="the prompt as you would type it in A1111/ComfyUI")
    p.add_argument("--request", metavar="FILE", help="a request JSON file (or - for stdin)")
    r = p.add_argument_group("request")
    r.add_argument(
        "--tag-length",
        choices=[x.value for x in Length],
        help="how many tags: very_short 6-18, short 18-36, long 36-54, very_long 54-72 "
        "(default: long, or the model card's choice: short for the shipped model)",
    )
    r.add_argument(
        "--nl-length",
        choices=[x.value for x in Length],
        help="how many sentences: very_short 1-2, short 2-4, long 4-8, very_long 8+ "
        "(default: long, or the model card's choice: short for the shipped model)",
    )
    r.add_argument("--seed", type=int, help="-1 = random (default); the seed used is reported")
    r.add_argument(
        "--template",
        help=f"output template: {TYPED_TEMPLATE} (default: your prompt exactly as typed, the "
        f"additions inserted), {', '.join(TEMPLATES)} (the reference's, by category) or a "
        "custom string with <|placeholders|>",
    )
    r.add_argument(
        "--target",
        choices=[t.value for t in Target],
        help="escaping for a1111 (default), comfyui or plain text",
    )
    r.add_argument("--aspect-ratio", type=float, help="width / height of the image")
    r.add_argument("--ban", action="append", default=[], metavar="TAG", help="ban this tag")
    r.add_argument(
        "--ban-regex",
        action="append",
        default=[],
        metavar="RE",
        help="ban tags matching this regular expression",
    )
    r.add_argument(
        "--ban-category",
        action="append",
        default=[],
        metavar="CAT",
        help="ban a whole category: artist, characters, copyrights, ...",
    )
    r.add_argument(
        "--ban-group",
        action="append",
        default=[],
        metavar="GROUP",
        help="ban a tag group: hair, eyes, clothing, background",
    )
    r.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="TAG",
        help="keep this tag away from the model (LoRA trigger words)",
    )
    r.add_argument(
        "--gen-meta",
        action="store_true",
        help="let the model add missing meta (artist, characters, ...)",
    )
    r.add_argument("--keep-order", action="store_true", help="do not shuffle new tags")
    r.add_argument(
        "--no-tag-floor",
        action="store_true",
        help="let the model end the tag line when it likes and retry until the tag length's "
        "minimum, as the reference does (default: a count is drawn from the length's range "
        "and the line may not end, nor repeat a tag, before it holds that many: one call)",
    )
    r.add_argument(
        "--no-count-tag",
        action="store_true",
        help="give the model your tags as typed (default: tags that describe a person but "
        "count nobody, like 'long hair, smile', get the people-count tag they come with in "
        "real prompts, e.g. 1girl, added first on the line; a counted line gets another "
        "only on strong evidence, e.g. 1boy beside '1girl, hetero')",
    )
    r.add_argument(
        "--no-caption-people",
        action="store_true",
        help="let a caption written from tags alone say what the model likes, as the "
        "reference does (default: it leans towards the people the tags count, e.g. a girl "
        "or woman for 1girl, until it names them, and away from people they do not count; "
        "when none of its draws names them, it is drawn once more; with nobody counted, the "
        "same goes for the things your own one-word tags name, e.g. cat)",
    )
    r.add_argument(
        "--no-caption-floor",
        action="store_true",
        help="let the model end a caption when it likes and retry until the sentence "
        "length's minimum, as the reference does (default: a caption may not end before "
        "it holds that many complete sentences)",
    )
    r.add_argument(
        "--any-tags",
        action="store_true",
        help="let the model write tags the tag database does not know (default: new tags "
        "on every tag line, artists and characters too, must be real tags; your own are "
        "always kept)",
    )
    r.add_argument(
        "--tag-prior",
        type=float,
        metavar="STRENGTH",
        help="how strongly the tag line leans towards tags that accompany yours in real "
        "prompts (a co-occurrence table shipped with presample): 0 turns it off, up to 4 "
        "(default: the model card's, 3 for the shipped model; off for published models)",
    )
    r.add_argument(
        "--tag-draw",
        type=float,
        metavar="SHARE",
        help="share (0 to 1) of the new tags drawn from the tags that most often accompany "
        "yours in real prompts before the model writes the rest: 0 leaves every tag to the "
        "model, 1 draws them all (default: the model card's, 0.5 for the shipped model; 0 "
        "for published models)",
    )
    r.add_argument(
        "--no-sfw",
        action="store_true",
        help="leave an unrated request unrated, as the reference does (default: a request "
        "without a rating tag asks for a general-rated image and keeps explicit and "
        "suggestive tags out)",
    )
    r.add_argument(
        "--keep-spelling",
        action="store_true",
        help="write your own tags exactly as typed (default: known tags as every tag is "
        "written for the target, long_hair -> long hair, an alias -> its tag; weighted "
        "tags, text and unknown tags such as LoRA triggers are always kept as typed)",
    )
    r.add_argument(
        "--read-any-script",
        action="store_true",
        help="show the model text in any script, as the reference does (default: text "
        "mostly in a script the models cannot read, Chinese or Japanese say, stays in the "
        "prompt as typed and is not expanded; a prompt of nothing else comes back unchanged)",
    )
    r.add_argument(
        "--new-names",
        choices=["auto", "always", "never"],
        help="which names the model may add: auto (default) adds artists only when you "
        "name an artist, characters and copyrights only when you name a character or a "
        "copyright; always: any; never: none",
    )
    r.add_argument(
        "--caption-candidates",
        type=int,
        metavar="N",
        help="captions to draw when one is written from tags alone; the one whose words "
        "come most from the tags is kept (default 3; 1 = one draw, as the reference does)",
    )
    p.add_argument(
        "--for",
        dest="encoder",
        choices=["prompt", "clip", "t5", "flux2"],
        default="prompt",
        help="what to print: the combined prompt (default); clip: the tags alone (CLIP "
        "encoders: SD 1.5, SDXL); t5: the sentences alone (T5/LLM encoders: SD3, FLUX); "
        "flux2: a FLUX.2 structured JSON prompt. --json has all of them",
    )
    p.add_argument("--json", action="store_true", help="print the whole result as JSON")
    add_model_options(p)
    p.set_defaults(handler=run)


def build_request(args: argparse.Namespace) -> PresampleRequest:
    if args.request is not None and args.prompt is not None:
        raise UserError("give a prompt or --request, not both")
    if args.request is not None:
        # Only what the file sets: the rest stays open to the model card's defaults.
        base = parse_request_json(read_text(args.request), args.request).model_dump(
            exclude_unset=True
        )
    elif args.prompt is not None:
        base = {"prompt": args.prompt}
    else:
        raise UserError('no prompt: presample "1girl, scenery" (see presample generate --help)')
    bans = [*base.get("ban", [])]
    bans += [BanRule(kind="exact", pattern=t).model_dump() for t in args.ban]
    bans += [BanRule(kind="regex", pattern=t).model_dump() for t in args.ban_regex]
    bans += [BanRule(kind="category", pattern=t).model_dump() for t in args.ban_category]
    bans += [BanRule(kind="group", pattern=t).model_dump() for t in args.ban_group]
    updates = {
        "tag_length": args.tag_length, "nl_length": args.nl_length, "seed": args.seed,
        "template": args.template, "target": args.target, "aspect_ratio": args.aspect_ratio,
        "caption_candidates": args.caption_candidates, "tag_prior": args.tag_prior,
        "tag_draw": args.tag_draw,
    }  # fmt: skip
    base.update({k: v for k, v in updates.items() if v is not None})
    base["ban"] = bans
    base["ignored"] = [*base.get("ignored", []), *args.ignore]
    if args.gen_meta:
        base["gen_meta"] = True
    if args.keep_order:
        base["shuffle_new_tags"] = False
    if args.no_tag_floor:
        base["fill_tag_length"] = False
    if args.no_count_tag:
        base["count_tag"] = False
    if args.no_caption_people:
        base["caption_people"] = False
    if args.no_caption_floor:
        base["fill_nl_length"] = False
    if args.any_tags:
        base["known_tags_only"] = False
    if args.new_names:
        base["new_names"] = args.new_names
    if args.no_sfw:
        base["sfw"] = False
    if args.read_any_script:
        base["read_any_script"] = True
    if args.keep_spelling:
        base["tag_spelling"] = "typed"
    try:
        return PresampleRequest.model_validate(base)
    except ValidationError as exc:
        raise UserError(f"invalid request: {describe_validation_error(exc)}") from None


def run(args: argparse.Namespace) -> int:
    try:
        request = build_request(args)
    except ValueError as exc:  # BanRule validation of --ban-* values
        if isinstance(exc, ValidationError):
            raise UserError(describe_validation_error(exc)) from None
        raise
    presampler = open_presampler(args)
    with presampler:
        result = presampler.presample(request)
    if args.json:
        print(result.model_dump_json(indent=2))
    else:
        print(_for_encoder(result, args.encoder))
        seconds = result.timings.get("total_seconds", 0.0)
        for note in result.notes:
            print(f"note: {note}", file=sys.stderr)
        short = [s.task.value for s in result.steps if not s.reached_target]
        if short:
            print(
                f"note: the length target was not reached in: {', '.join(short)}", file=sys.stderr
            )
        made = f"{presampler.source.name} on {result.engine}"
        print(f"\n(seed {result.seed}, {seconds:.1f} s, {made})", file=sys.stderr)
    return 0


def _for_encoder(result: PresampleResult, encoder: str) -> str:
    if encoder == "clip":
        return result.tags_prompt
    if encoder == "t5":
        return result.text_prompt
    if encoder == "flux2":
        return json.dumps(result.flux2_prompt, indent=2, ensure_ascii=False)
    return result.prompt
