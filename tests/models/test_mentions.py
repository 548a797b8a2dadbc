from models.mentions import Entity, Match, MentionMatcher, is_acronym, mention_context

ENTITIES = [
    Entity("lakeshore", "site", "Lakeshore Clinical Research Institute", ("Lakeshore CRI", "LCRI", "Lakeshore")),
    Entity("als-hope", "group", "ALS Hope Alliance", ("ALS Hope",)),
    Entity("als", "condition", "Amyotrophic lateral sclerosis", ("ALS", "Lou Gehrig's disease")),
    Entity("mg", "condition", "Myasthenia gravis", ("MG",)),
    Entity("calm-als", "trial", "CALM-ALS", ("NCT09912345",)),
    Entity("calloway", "sponsor", "Calloway Therapeutics", ("Calloway",)),
]
M = MentionMatcher(ENTITIES)


def found(text):
    return [(m.entity, text[m.start:m.end]) for m in M.find(text)]


def test_case_insensitive_names_and_possessives():
    assert found("lakeshore's nurses") == [("lakeshore", "lakeshore's")]
    assert found("LAKESHORE CRI rocks") == [("lakeshore", "LAKESHORE CRI")]


def test_longest_match_wins_over_nested_alias():
    assert found("ALS Hope Alliance helped") == [("als-hope", "ALS Hope Alliance")]
    assert found("Lakeshore Clinical Research Institute") == [("lakeshore", "Lakeshore Clinical Research Institute")]


def test_acronyms_only_in_capitals_and_not_after_numbers():
    assert found("I have MG.") == [("mg", "MG")]
    assert found("take 60 mg daily") == []
    assert found("take 60 MG daily") == []
    assert found("take 60MG daily") == []
    assert found("my als is slow") == []
    assert found("LCRIs") == [("lakeshore", "LCRIs")]


def test_only_units_are_skipped_after_numbers():
    # "60 MG" is a dose, but an acronym that is no unit is a mention after a number too.
    assert found("we were 20 ALS patients") == [("als", "ALS")]
    assert found("at 11.30 LCRI calls") == [("lakeshore", "LCRI")]
    assert found("20ALS") == []


def test_bare_apostrophe_is_a_possessive_only_after_s():
    assert found("they called it 'Calloway' in the letter") == [("calloway", "Calloway")]
    assert found("the Lakeshore CRIs' nurses") == [("lakeshore", "Lakeshore CRIs")]
    m = MentionMatcher([Entity("st", "site", "Saint Judes"), Entity("pd", "condition", "Parkinson's")])
    text = "the Saint Judes' ward, a 'Parkinson's' clinic"
    assert [text[x.start:x.end] for x in m.find(text)] == ["Saint Judes'", "Parkinson's"]


def test_no_match_inside_other_words():
    assert found("Callowayish") == []
    assert found("GALS and PALS") == []


def test_registry_ids_and_hyphen_space_variants():
    assert found("see nct09912345 now") == [("calm-als", "nct09912345")]
    assert found("the CALM ALS trial") == [("calm-als", "CALM ALS")]
    assert found("Lou Gehrigs disease") == [("als", "Lou Gehrigs disease")]


def test_is_acronym():
    assert is_acronym("MG") and is_acronym("LCRI") and not is_acronym("Lakeshore") and not is_acronym("A")


def test_context_is_clause_when_sentence_names_two_entities():
    text = "Intro line.\n\nGreat nurses at Lakeshore, but Calloway ran it terribly. Other stuff."
    ms = M.find(text)
    by = {m.entity: m for m in ms}
    assert mention_context(text, by["lakeshore"], ms) == "Great nurses at Lakeshore"
    assert mention_context(text, by["calloway"], ms) == "Calloway ran it terribly."


def test_context_is_sentence_for_a_single_entity():
    text = "First sentence. Lakeshore was kind to us! Last one."
    ms = M.find(text)
    assert mention_context(text, ms[0], ms) == "Lakeshore was kind to us!"


FUZZY = MentionMatcher([
    Entity("copperfield", "site", "Copperfield Neuroscience Institute", ("Copperfield",)),
    Entity("keltic", "sponsor", "Keltic Biosciences", ("Keltic",)),
    Entity("mg-united", "group", "MG United Patient Association", ("MG United",)),
    Entity("mg", "condition", "Myasthenia gravis", ("MG",)),
], common_words=frozenset({"celtic", "united", "untied"} - {"untied"}))


def fuzzy(text):
    return [(m.entity, m.surface) for m in FUZZY.find(text)]


def test_close_misspellings_of_names_match():
    assert fuzzy("the Copperfeild team") == [("copperfield", "Copperfeild")]
    assert fuzzy("Coperfield's nurses") == [("copperfield", "Coperfield's")]
    assert fuzzy("Keltik paid for it") == [("keltic", "Keltik")]
    assert fuzzy("MG Untied (typo)") == [("mg-united", "MG Untied")]


def test_misspelling_guard_keeps_precision():
    assert fuzzy("a Celtic knot") == []  # an ordinary word
    assert fuzzy("the keltik thing") == []  # not capitalised like a name
    assert fuzzy("Keltica is a band") == []  # another word that starts with the name
    assert fuzzy("Kopperfield") == []  # first letter differs
    assert fuzzy("Kaltik") == []  # two edits in a short name
    assert fuzzy("Copprfeild") == [("copperfield", "Copprfeild")]  # two allowed from ten letters


def test_every_word_of_a_name_is_found_under_turkish_dotted_and_dotless_i():
    """The quick word test before a pattern runs must not skip what the case-insensitive
    pattern matches: IGNORECASE takes "İ" and "ı" for i, casefold() alone does not."""
    m = MentionMatcher([Entity(id="izmir", kind="site", name="Clinic Izmir")], fuzzy=False)
    found = m.find("We went to CLINIC İZMIR, then to clinic ızmir.")
    assert [x.surface for x in found] == ["CLINIC İZMIR", "clinic ızmir"]


def test_invisible_characters_do_not_hide_a_name_and_offsets_stay_the_texts():
    zw = "\u200b"
    texts = {
        f"Lake{zw}shore called back": ("lakeshore", f"Lake{zw}shore"),
        "\ufeffLakeshore's nurses": ("lakeshore", "Lakeshore's"),
        "Lake\u00adshore CRI again": ("lakeshore", "Lake\u00adshore CRI"),
        "👨\u200d👩\u200d👧 we met Calloway\u200b Therapeutics today": ("calloway", "Calloway\u200b Therapeutics"),
        f"NCT0991{zw}2345 enrolled": ("calm-als", f"NCT0991{zw}2345"),
        # a zero-width space can be the only word break (copied line breaks, Thai text)
        f"Lakeshore{zw}clinic was ok": ("lakeshore", "Lakeshore"),
        f"\u0e01{zw}Lakeshore{zw}\u0e01": ("lakeshore", "Lakeshore"),
    }
    for text, expected in texts.items():
        assert found(text) == [expected], text
    text = "\u200d ALS Hope and Lakeshore"
    assert [(m.start, m.end) for m in M.find(text)] == [(2, 10), (15, 24)]
    assert found("ALS Hope\u00adful news") == [("als", "ALS")]  # a soft hyphen is inside a word
