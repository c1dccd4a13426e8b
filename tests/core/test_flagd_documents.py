"""Pure flagd document edits (core/flagd_documents.py) and flag-file path allowlists."""

from __future__ import annotations

import json
from typing import Any

import pytest

from responder.core.file_allowlists import check_flag_file, flag_path_problem, normalise_dir
from responder.core.flagd_documents import read_flag, render_like, switch_flag
from responder.errors import NotAllowedError, PermanentError

TARGETING = {"if": [{"==": [{"var": "tier"}, "gold"]}, "on", "off"]}
DOCUMENT: dict[str, Any] = {
    "$schema": "https://flagd.dev/schema/v0/flags.json",
    "flags": {
        "checkout-v2": {
            "state": "ENABLED",
            "variants": {"on": True, "off": False},
            "defaultVariant": "on",
            "targeting": TARGETING,
            "metadata": {"owner": "shop"},
        },
        "banner": {
            "state": "ENABLED",
            "variants": {"plain": "hello", "sale": "50% off"},
            "defaultVariant": "sale",
        },
    },
    "$evaluators": {"gold": {"in": ["gold", {"var": "tier"}]}},
}


def _text(document: dict[str, Any], indent: int | None = 2) -> str:
    return json.dumps(document, indent=indent) + "\n"


def test_switch_sets_the_default_drops_targeting_and_keeps_the_rest() -> None:
    text = _text(DOCUMENT)
    change = switch_flag(text, "checkout-v2", "off", "flags.json")
    assert change.changed is True
    assert change.removed_targeting == TARGETING
    after = json.loads(change.text)
    assert after["flags"]["checkout-v2"] == {
        "state": "ENABLED",
        "variants": {"on": True, "off": False},
        "defaultVariant": "off",
        "metadata": {"owner": "shop"},
    }
    assert list(after["flags"]["checkout-v2"]) == [
        "state",
        "variants",
        "defaultVariant",
        "metadata",
    ]
    assert after["flags"]["banner"] == DOCUMENT["flags"]["banner"]
    assert list(after) == ["$schema", "flags", "$evaluators"]
    assert after["$evaluators"] == DOCUMENT["$evaluators"]
    assert change.before.has_targeting
    assert not change.after.has_targeting
    assert change.after.serves("off")
    assert not change.before.serves("off")


def test_the_text_keeps_its_indentation_and_final_newline() -> None:
    for indent in (2, 4):
        text = _text(DOCUMENT, indent)
        changed = switch_flag(text, "checkout-v2", "off", "f.json").text
        expected = dict(DOCUMENT, flags=dict(DOCUMENT["flags"]))
        flag = {k: v for k, v in DOCUMENT["flags"]["checkout-v2"].items() if k != "targeting"}
        expected["flags"]["checkout-v2"] = dict(flag, defaultVariant="off")
        assert changed == _text(expected, indent)
    compact = json.dumps(DOCUMENT)
    assert "\n" not in switch_flag(compact, "checkout-v2", "off", "f.json").text


def test_tabs_and_unicode_survive() -> None:
    text = '{\n\t"flags": {\n\t\t"greeting": {"state": "ENABLED", "variants": {"a": "grüß", "b": "hi"}, "defaultVariant": "a"}\n\t}\n}'  # noqa: E501
    changed = switch_flag(text, "greeting", "b", "f.json").text
    assert changed.startswith('{\n\t"flags"')
    assert "grüß" in changed
    assert not changed.endswith("\n")


def test_a_disabled_flag_is_enabled_so_clients_get_the_variant_not_their_code_default() -> None:
    document = {
        "flags": {
            "x": {"state": "DISABLED", "variants": {"on": 1, "off": 0}, "defaultVariant": "off"}
        }
    }
    change = switch_flag(_text(document), "x", "off", "f.json")
    assert change.changed is True
    assert (change.before.state, change.after.state) == ("DISABLED", "ENABLED")


def test_nothing_changes_when_it_already_serves_the_variant() -> None:
    document = {
        "flags": {
            "x": {
                "state": "ENABLED",
                "variants": {"on": 1, "off": 0},
                "defaultVariant": "off",
                "targeting": {},
            }
        }
    }
    text = _text(document)
    change = switch_flag(text, "x", "off", "f.json")
    assert change.changed is False
    assert change.text is text
    assert change.removed_targeting is None


@pytest.mark.parametrize(
    ("text", "flag", "variant", "message"),
    [
        ("{nope", "x", "off", "is not valid JSON"),
        ('{"flags": NaN}', "x", "off", "is not valid JSON"),
        ("[]", "x", "off", 'expected an object with a "flags" object'),
        ('{"flags": []}', "x", "off", 'expected an object with a "flags" object'),
        (_text(DOCUMENT), "checkout", "off", r"flags: banner, checkout-v2\)"),
        (_text(DOCUMENT), "checkout-v2", "disabled", r"variants: on, off\)"),
        ('{"flags": {"x": {"state": "ENABLED"}}}', "x", "off", 'no "variants" object'),
    ],
)
def test_refusals_say_what_exists(text: str, flag: str, variant: str, message: str) -> None:
    with pytest.raises(PermanentError, match=message):
        switch_flag(text, flag, variant, "/srv/flags/f.json")


def test_read_flag_reports_what_clients_get() -> None:
    view = read_flag(_text(DOCUMENT), "banner", "f.json")
    assert (view.state, view.default_variant, view.has_targeting) == ("ENABLED", "sale", False)
    assert view.variants == ("plain", "sale")
    assert view.serves("sale")
    assert not view.serves("plain")


def test_render_like_defaults_to_two_spaces_for_odd_layouts() -> None:
    assert render_like({"flags": {}}, '{"flags":\n{}}') == '{\n  "flags": {}\n}'


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/srv/flags/f.json", None),
        ("/srv/flags/team a/f.json", None),
        ("srv/flags/f.json", "absolute path"),
        ("/srv/flags/../etc/f.json", "absolute path"),
        ("/srv/./flags/f.json", "absolute path"),
        ("/srv//flags/f.json", "absolute path"),
        ("/srv/flags/f.json\n", "absolute path"),
        ("/srv/flags/f.yaml", "*.json"),
        ("/srv/flags/.json", "*.json"),
    ],
)
def test_flag_path_syntax(path: str, problem: str | None) -> None:
    found = flag_path_problem(path)
    assert found is None if problem is None else problem in (found or "")


@pytest.mark.parametrize(
    ("path", "dirs", "allowed"),
    [
        ("/srv/flags/f.json", ("/srv/flags",), True),
        ("/srv/flags/team/f.json", ("/srv/flags",), True),
        ("/srv/flags/f.json", ("/srv/other", "/srv/flags"), True),
        ("/srv/flagsX/f.json", ("/srv/flags",), False),
        ("/srv/f.json", ("/srv/flags",), False),
        ("/srv/flags/f.json", (), False),
        ("/srv/flags/../f.json", ("/srv",), False),
    ],
)
def test_check_flag_file(path: str, dirs: tuple[str, ...], allowed: bool) -> None:
    if allowed:
        check_flag_file(path, dirs)
    else:
        with pytest.raises(NotAllowedError, match="refused"):
            check_flag_file(path, dirs)


def test_an_empty_allowlist_names_the_setting() -> None:
    with pytest.raises(NotAllowedError, match="RESPONDER_FLAGD_FILE_DIRS is empty"):
        check_flag_file("/srv/flags/f.json", ())


@pytest.mark.parametrize(
    ("entry", "expected"),
    [("/srv/flags", "/srv/flags"), ("/srv/flags/", "/srv/flags"), (" /srv ", "/srv"), ("/", "/")],
)
def test_normalise_dir(entry: str, expected: str) -> None:
    assert normalise_dir(entry) == expected


@pytest.mark.parametrize("entry", ["srv/flags", "/srv/../etc", "/srv/./x", "", "/srv//x"])
def test_normalise_dir_refuses(entry: str) -> None:
    with pytest.raises(ValueError, match="RESPONDER_FLAGD_FILE_DIRS"):
        normalise_dir(entry)
