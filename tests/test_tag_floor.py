"""The tag line's length floor and no-repeat rule, as the engine's constraint sees it."""

from __future__ import annotations

from presample.tag_floor import AllOf, TagFloor, consistent
from presample.tagdb import TagDatabase
from presample.tipo import parse_tipo_output

PROMPT = "rating: general\ntarget: <|short|> <|tag_to_long|>\ntag: 1girl, solo"


def test_the_line_may_not_end_below_the_minimum() -> None:
    floor = TagFloor(minimum=4)
    # Two tags so far: neither end of sequence nor a newline may end the line,
    # nor a piece that finishes a tag and then breaks the line.
    assert floor.allowed(PROMPT, [None, "\n", ",", " smile", ", smile\n"]) == [
        False, False, True, True, False,
    ]  # fmt: skip
    # The tag being written counts once the line ends on it: four is enough, three is not.
    assert floor.allowed(PROMPT + ", long hair, smile", [None, "\n"]) == [True, True]
    assert floor.allowed(PROMPT + ", long hair, sm", [None]) == [True]
    assert floor.allowed(PROMPT + ", long hair", [None, "\n", "\nlong:"]) == [False] * 3


def test_a_tag_already_on_the_line_is_refused_in_any_spelling() -> None:
    floor = TagFloor(minimum=0)
    text = PROMPT + ", Long_Hair, blue eyes, solo"
    # "solo" is being written again: finishing it is refused, going on ("solo focus") is not.
    assert floor.allowed(text, [",", " focus", "\n", None]) == [False, True, False, False]
    assert floor.allowed(PROMPT + ", long hair", [", long hair,", ", smile,"]) == [False, True]
    assert floor.allowed(PROMPT + ", blue eyes, long", [" hair,"]) == [True]
    assert floor.allowed(PROMPT + ", long_hair, long", [" hair,"]) == [False]


def test_other_lines_are_not_touched() -> None:
    floor = TagFloor(minimum=50)
    text = PROMPT + ", smile\nlong: A girl. A girl"
    assert floor.allowed(text, [None, "\n", "."]) == [True, True, True]
    assert floor.allowed("short: solo, solo", [None, ","]) == [True, True]


class _Refuse:
    def __init__(self, piece: str) -> None:
        self.piece = piece

    def allowed(self, text: str, candidates: list[str | None]) -> list[bool]:
        return [c != self.piece for c in candidates]


def test_all_of_needs_every_part() -> None:
    both = AllOf((TagFloor(minimum=4), _Refuse(" smile")))
    assert both.allowed(PROMPT, [None, " smile", " hat"]) == [False, False, True]


def test_with_a_vocabulary_only_real_tags_are_finished_or_started(db: TagDatabase) -> None:
    floor = TagFloor(minimum=0, vocabulary=db, protected=frozenset({"my oc"}))
    text = PROMPT + ", long"
    # "long" alone is no tag: neither the end of the line nor a comma may finish it.
    assert floor.allowed(text, [" hair,", " hairx,", " hai", " hairq", "\n", ", blu"]) == [
        True, False, True, False, False, False,
    ]  # fmt: skip
    # Words that no tag starts with are refused as they are written.
    assert floor.allowed(PROMPT + ",", [" xqzzv", " smile", " blue ", " Hatsune_Miku,"]) == [
        False, True, True, True,
    ]  # fmt: skip
    # The user's own tags are kept, known or not.
    assert floor.allowed("tag: 1girl, my oc", [",", "\n", " smile"]) == [True, True, False]


def test_every_real_tag_prefix_is_a_prefix(db: TagDatabase) -> None:
    assert db.has_prefix("hatsune mi") and db.has_prefix("1gi") and db.has_prefix("")
    assert not db.has_prefix("xqzzv")
    keys = db.prefixed_keys("long ha", 3)
    assert keys == sorted(keys) and len(keys) == 3 and all(k.startswith("long ha") for k in keys)


def test_runs_of_underscores_or_spaces_are_no_tag(db: TagDatabase) -> None:
    floor = TagFloor(minimum=0, vocabulary=db)
    text = PROMPT + ", long"
    assert floor.allowed(text, ["_", "__", "  ", " ", "_hair,"]) == [True, False, False, True, True]
    assert floor.allowed(text + "_", ["_", "h"]) == [False, True]


def test_a_repeat_may_only_be_the_start_of_a_longer_tag(db: TagDatabase) -> None:
    floor = TagFloor(minimum=0, vocabulary=db)
    # "solo" is on the line: writing it again is fine while "solo focus" may follow.
    assert floor.allowed(PROMPT + ", sol", ["o"]) == [True]
    text = "tag: 1girl, holding weapon with feet, holding weapon with fe"
    # "holding weapon with fee" can only become the tag already there.
    assert floor.allowed(text, ["et", "e", "et,"]) == [False, False, False]


def test_a_word_whose_every_tag_is_banned_is_not_started(db: TagDatabase) -> None:
    # Banned tags are refused when finished (BanConstraint); the floor must not
    # let a word start that could only become one of them, or the line would
    # be stuck: the comma refused by the ban, the newline by the floor.
    floor = TagFloor(minimum=10, vocabulary=db, banned=lambda tag: "cleavage" in tag)
    text = PROMPT + ", long hair,"
    assert floor.allowed(text, [" cleavage", " cleav", " clean"]) == [False, True, True]  # cleaver
    # Without the ban the same word is fine.
    assert TagFloor(minimum=10, vocabulary=db).allowed(text, [" cleavage"]) == [True]
    # The user's own tags are never banned for them.
    mine = TagFloor(10, db, protected=frozenset({"cleavage"}), banned=lambda t: "cleavage" in t)
    assert mine.allowed(text, [" cleavage"]) == [True]


def test_a_users_unknown_tag_is_typed_once_and_then_ends(db: TagDatabase) -> None:
    floor = TagFloor(minimum=0, vocabulary=db, protected=frozenset({"my oc"}))
    # The user's unknown tag may be written token by token, but not past its end...
    assert floor.allowed("tag: 1girl, my", [" oc", " ocx"]) == [True, False]
    assert floor.allowed("tag: 1girl, my oc", [" ", ","]) == [False, True]
    # ...and not a second time once it is on the line.
    assert floor.allowed("tag: my oc, 1girl, my", [" oc"]) == [False]


def test_a_new_tag_may_not_contradict_the_line() -> None:
    floor = TagFloor(minimum=0)
    text = "tag: 1girl, solo, night, smile, "
    assert floor.allowed(text + "day", [",", " glow,"]) == [False, True]  # "day glow" is fine
    assert floor.allowed(text + "2boys", [",", "\n"]) == [False, False]
    assert floor.allowed(text + "outdoors", [","]) == [True]
    # The user's own tags are theirs: kept, and new tags are judged against them.
    mine = TagFloor(minimum=0, protected=frozenset({"day"}))
    assert mine.allowed(text + "day", [","]) == [True]
    assert floor.allowed("tag: solo, 2girls, ", ["smile,"]) == [True]


def test_contradictions_are_only_the_sure_ones() -> None:
    from presample.contradictions import contradicts

    assert contradicts("night", ["day", "smile"]) and contradicts("indoors", ["outdoors"])
    assert contradicts("night sky", ["day"]) and contradicts("day", ["night sky"])
    assert contradicts("starry sky", ["day"]) and contradicts("day", ["starry sky"])
    assert contradicts("blue sky", ["night"]) and not contradicts("blue sky", ["day"])
    assert contradicts("solo", ["1girl", "1boy"]) and contradicts("2girls", ["1girl"])
    assert contradicts("1girl", ["no humans"]) and contradicts("no humans", ["1boy"])
    assert contradicts("multiple boys", ["1boy"]) and contradicts("2boys", ["solo"])
    # Several people may hold several hair lengths; "multiple girls" goes with "2girls".
    assert not contradicts("short hair", ["long hair", "2girls"])
    assert not contradicts("multiple girls", ["2girls"]) and not contradicts("1boy", ["1girl"])
    assert not contradicts("6+girls", ["2girls"]) and not contradicts("solo", ["1girl"])
    assert not contradicts("smile", ["solo", "2girls"])  # the line's own clash is not smile's
    # One person has one hair colour and one eye colour, two when the line says
    # so (two-tone hair, heterochromia), never three; several people any number.
    assert contradicts("blonde hair", ["1girl", "black hair"])
    assert not contradicts("blonde hair", ["1girl", "black hair", "two-tone hair"])
    assert contradicts("blonde hair", ["1girl", "black hair", "brown hair", "two-tone hair"])
    assert contradicts("blue eyes", ["solo", "red eyes"])
    assert not contradicts("blue eyes", ["solo", "red eyes", "heterochromia"])
    assert contradicts("blue eyes", ["solo", "red eyes", "green eyes", "heterochromia"])
    assert not contradicts("blonde hair", ["1girl", "red eyes", "blue eyes"])
    assert not contradicts("blonde hair", ["2girls", "black hair", "brown hair"])
    # One framing per picture; upper body with portrait is how Danbooru tags a bust.
    assert contradicts("upper body", ["full body"]) and contradicts("full body", ["cowboy shot"])
    assert contradicts("portrait", ["2girls", "full body"])
    assert not contradicts("portrait", ["upper body"]) and not contradicts("close-up", ["portrait"])
    # One pose for one person; two people may stand and sit.
    assert contradicts("sitting", ["1girl", "standing"])
    assert contradicts("on back", ["solo", "sitting"])
    assert not contradicts("sitting", ["1girl", "1boy", "standing"])
    assert not contradicts("lying", ["1girl", "on back"])
    # A woman's body on a line whose only people are boys (seen: 1boy, armor, castle).
    assert contradicts("medium breasts", ["1boy", "armor"]) and contradicts("cleavage", ["2boys"])
    assert contradicts("breasts", ["1boy"]) and not contradicts("pectorals", ["1boy"])
    assert not contradicts("medium breasts", ["1boy", "1girl"])
    assert not contradicts("large breasts", ["armor"])  # nobody counted: the count tag decides


def test_the_users_hair_length_holds_for_one_person(db: TagDatabase) -> None:
    from presample.contradictions import contradicts_yours

    assert contradicts_yours("short hair", ["long hair"], ["1girl", "smile"])
    assert not contradicts_yours("very long hair", ["long hair"], ["1girl"])
    assert not contradicts_yours("short hair", ["long hair"], ["2girls"])  # two people
    assert not contradicts_yours("short hair", ["smile"], ["1girl", "long hair"])  # the model's
    assert not contradicts_yours("smile", ["long hair"], ["1girl"])
    floor = TagFloor(minimum=0, protected=frozenset({"long hair"}))
    assert floor.allowed("tag: long hair, 1girl, smile, short hai", ["r,"]) == [False]
    line = parse_tipo_output("tag: 1girl, long hair, short hair, smile", db.categorize)
    kept = consistent(line, [], frozenset({"long hair", "1girl"}))
    assert "short hair" not in kept.tags and "smile" in kept.tags


def test_a_word_is_not_started_when_every_tag_it_could_become_contradicts(
    db: TagDatabase,
) -> None:
    floor = TagFloor(minimum=0, vocabulary=db)
    text = "tag: 1girl, outdoors, "
    # "indoors" can only become itself, which contradicts; "indoor shoes" is fine.
    assert floor.allowed(text + "indoor", ["s", "s,", " shoes"]) == [False, False, True]
    # The user's "night" counts though the model wrote past it ("night sky").
    mine = TagFloor(minimum=0, vocabulary=db, protected=frozenset({"night"}))
    assert mine.allowed("tag: scenery, night sky, cloud, day", [","]) == [False]


def test_contradicting_tags_left_at_the_end_of_a_generation_are_dropped() -> None:
    from presample.categories import Category
    from presample.tag_floor import consistent
    from presample.tipo import TipoOutput

    output = TipoOutput(
        tags=["1girl", "night", "smile", "day", "indoors", "solo", "2boys"],
        categories={Category.GENERAL: ["night", "smile", "day", "indoors", "solo"],
                    Category.SPECIAL: ["1girl", "2boys"]},
    )  # fmt: skip
    kept = consistent(output, earlier=["outdoors"], protected=frozenset({"1girl", "night"}))
    assert kept.tags == ["1girl", "night", "smile", "solo"]
    assert kept.categories[Category.GENERAL] == ["night", "smile", "solo"]
    assert kept.categories[Category.SPECIAL] == ["1girl"]
    # The user's own clash stays theirs.
    theirs = TipoOutput(tags=["day", "night"], categories={Category.GENERAL: ["day", "night"]})
    assert consistent(theirs, [], frozenset({"day", "night"})) == theirs


def _fill_recorder(keys: list[str]) -> tuple[list[list[str]], object]:
    asked: list[list[str]] = []

    def fill(tags: list[str]) -> list[str]:
        asked.append(list(tags))
        return keys

    return asked, fill


def test_before_the_model_wants_to_end_any_tag_may_follow() -> None:
    asked, fill = _fill_recorder(["smile"])
    floor = TagFloor(minimum=5, fill=fill)
    # The line end is refused but was not the model's best token: nothing is forced.
    assert floor.allowed(PROMPT + ", hat", [",", "\n"]) == [True, False]
    assert floor.allowed(PROMPT + ", hat,", [" dress", " smile"]) == [True, True]
    assert asked == []


def test_a_line_the_floor_forces_on_is_filled_from_the_fill_tags() -> None:
    asked, fill = _fill_recorder(["blue sky", "smile", "tree"])
    floor = TagFloor(minimum=6, fill=fill)
    text = PROMPT + ", hat"
    # The model's best token ends the line; the floor refuses it, and from here on
    # new tags come from the fill tags (asked for with the line's tags).
    assert floor.allowed(text, ["\n", ",", " band"]) == [False, True, True]
    assert asked == [["1girl", "solo", "hat"]]
    after = text + ","
    assert floor.allowed(after, [" smile", " dress", " blue", " bl", " t"]) == [
        True, False, True, True, True,
    ]  # fmt: skip
    assert floor.allowed(after + " smile", [",", " and", "\n"]) == [True, False, False]
    assert floor.allowed(after + " dress", [","]) == [False]
    # The tag the line was forced after may still grow ("hat" -> "hat band").
    assert floor.allowed(text + " band", [",", "\n"]) == [True, False]
    assert len(asked) == 1  # once per line


def test_a_forced_line_with_nothing_left_to_fill_ends_short() -> None:
    _, fill = _fill_recorder(["smile", "solo"])
    floor = TagFloor(minimum=10, fill=fill)
    text = PROMPT + ", hat"
    assert floor.allowed(text, [None, ","]) == [False, True]
    # "solo" is on the line already; once "smile" is too there is nothing to add.
    assert floor.allowed(text + ", smile", [None, "\n", ","]) == [True, True, True]
    assert floor.allowed(text + ",", [" smile", " solo", " dress"]) == [True, False, False]


def test_fill_tags_still_obey_the_other_rules() -> None:
    _, fill = _fill_recorder(["day", "night", "smile"])
    floor = TagFloor(minimum=10, fill=fill, banned=lambda key: key == "smile")
    text = PROMPT + ", night"
    # "day" contradicts "night" and "smile" is banned: nothing to fill with, so the
    # line may end where the model wants, and no fill tag may be started.
    assert floor.allowed(text, ["\n"]) == [True]
    assert floor.allowed(text + ",", [" day", " smile", " night", " tree"]) == [False] * 4


def test_what_the_users_sentence_states_counts_against_new_tags() -> None:
    from presample.contradictions import said

    assert said("a red vintage car parked on a rainy street at night") == {"night"}
    assert said("Daylight, a girl indoors") == {"day", "indoors"}
    assert said("a birthday cake inside a box, midnightblue") == set()
    floor = TagFloor(minimum=0, stated=said("a car at night"))
    assert floor.allowed(PROMPT + ", car, day", [",", " time,", "\n"]) == [False, True, False]
    assert floor.allowed(PROMPT + ", car, night sky", [","]) == [True]


def test_the_tag_line_takes_no_second_space() -> None:
    # A forced line once ran 300 tokens of spaces (each a "piece that ends no tag"):
    # after a space, a piece may not start with another.
    floor = TagFloor(minimum=40)
    assert floor.allowed(PROMPT + ",", [" ", " smile", "smile"]) == [True, True, True]
    assert floor.allowed(PROMPT + ", ", [" ", " smile", "  ", "smile", "\t"]) == [
        False, False, False, True, False,
    ]  # fmt: skip
    assert floor.allowed(PROMPT + ", long ", [" hair", "hair"]) == [False, True]
    # Other lines keep their spacing.
    assert floor.allowed(PROMPT + ", smile\nlong: A girl. ", [" A"]) == [True]


def test_a_persons_features_wait_for_a_person_on_a_line_that_has_none() -> None:
    from presample.contradictions import describes_person, has_person, mentions_person

    scenery = "rating: general\ntarget: <|short|>\ntag: scenery, bowl"
    floor = TagFloor(minimum=0, needs_person=True)
    # "a bowl of ramen" once got "blonde hair, navel, choker": refused until a count tag.
    assert floor.allowed(scenery, [", blonde hair,", ", navel,", ", 1girl,", ", noodles,"]) == [
        False, False, True, True,
    ]  # fmt: skip
    assert floor.allowed(scenery + ", 1girl", [", blonde hair,"]) == [True]
    assert floor.allowed(scenery + ", solo", [", navel,"]) == [True]
    assert TagFloor(minimum=0).allowed(scenery, [", blonde hair,"]) == [True]
    assert describes_person("blonde hair") and describes_person("holding cup")
    # `cat, window, sunlight` once drew `mature female` with nobody in the picture.
    assert describes_person("mature female") and describes_person("old man")
    assert not any(map(describes_person, ["scenery", "no humans", "cat", "bowl", "ramen"]))
    assert has_person(["2boys"]) and has_person(["solo"]) and not has_person(["cat", "sky"])
    assert mentions_person("A girl reading a book") and mentions_person("he waves")
    assert not mentions_person("a bowl of ramen on a wooden table, steam rising")


def test_filling_a_line_with_no_person_brings_in_none() -> None:
    scenery = "rating: general\ntarget: <|short|>\ntag: bowl, plate"
    floor = TagFloor(minimum=6, needs_person=True,
                     fill=lambda tags: {"solo": 0.5, "1girl": 0.3, "chopsticks": 0.2})  # fmt: skip
    # The model would end the line at two tags; the floor fills it, without a person.
    assert floor.allowed(scenery, [None, ", solo,", ", 1girl,", ", chopsticks,"]) == [
        False, False, False, True,
    ]  # fmt: skip


def test_the_floor_refuses_a_new_tag_the_records_keep_apart_from_the_line() -> None:
    def apart(key: str, keys: object) -> bool:
        return key == "street" and "kitchen" in keys  # type: ignore[operator]

    text = "rating: general\ntarget: <|short|>\ntag: kitchen, food"
    floor = TagFloor(minimum=0, apart=apart)
    assert floor.allowed(text, [", street,", ", table,"]) == [False, True]
    # The user's own tag is theirs to pair.
    mine = TagFloor(minimum=0, protected=frozenset({"street"}), apart=apart)
    assert mine.allowed(text, [", street,"]) == [True]
