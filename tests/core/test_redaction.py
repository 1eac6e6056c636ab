"""Redacting sensitive values before text goes to the model, and restoring them in its reply."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.governance.redaction import Placeholders, redact, restore

# Fake credentials, assembled from pieces so that secret scanners do not flag this file.
OPENAI_KEY = "sk-" + "proj-" + "Ab3dEfGhIjKlMnOpQrStUvWx12"
SLACK_BOT_TOKEN = "xox" + "b-123456789012-1234567890123-" + "AbCdEfGhIjKlMnOpQrStUvWx"
SLACK_APP_TOKEN = "xa" + "pp-1-A0123ABCD-1234567890123-" + "0a1b2c3d4e5f6a7b8c9d"
GITHUB_TOKEN = "gh" + "p_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
GITHUB_PAT = "github" + "_pat_" + "11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789"
AWS_KEY_ID = "AKIA" + "IOSFODNN7EXAMPLE"
JWT = (
    "eyJhbGciOiJIUzI1NiJ9"
    + ".eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    + ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)
DISCORD_TOKEN = "MTA0NTY3ODkwMTIzNDU2Nzg5MA" + ".GabCdE." + "xYz0123456789abcdefGHIJKLmnopqr_s"


@pytest.mark.parametrize(
    ("message", "value", "placeholder"),
    [
        (
            "Hi, can you draft a reply to ada@example.com about the invoice?",
            "ada@example.com",
            "[EMAIL_1]",
        ),
        (
            "Forward it to grace.hopper+ops@mail.example.co.uk, please.",
            "grace.hopper+ops@mail.example.co.uk",
            "[EMAIL_1]",
        ),
        ("Call me on +1 (415) 555-0132 after 5pm.", "+1 (415) 555-0132", "[PHONE_1]"),
        ("My London number is +44 20 7946 0958.", "+44 20 7946 0958", "[PHONE_1]"),
        ("Le bureau : +33 1 23 45 67 89, demandez Ada.", "+33 1 23 45 67 89", "[PHONE_1]"),
        ("Office line (415) 555-0132, ask for Ada.", "(415) 555-0132", "[PHONE_1]"),
        ("Text 415-555-0132 when you land", "415-555-0132", "[PHONE_1]"),
        ("Please charge 4111 1111 1111 1111 for the renewal.", "4111 1111 1111 1111", "[CARD_1]"),
        ("My Mastercard is 5500-0000-0000-0004, expiry 12/27.", "5500-0000-0000-0004", "[CARD_1]"),
        ("Why was Amex 378282246310005 declined?", "378282246310005", "[CARD_1]"),
        ("card: 4111 1111 1111 1111 12/26 cvc in DM", "4111 1111 1111 1111", "[CARD_1]"),
        (
            "Wire it to DE89 3704 0044 0532 0130 00 by Friday.",
            "DE89 3704 0044 0532 0130 00",
            "[IBAN_1]",
        ),
        ("UK account: GB82WEST12345698765432.", "GB82WEST12345698765432", "[IBAN_1]"),
        ("IBAN NL91 ABNA 0417 1643 00 THANKS", "NL91 ABNA 0417 1643 00", "[IBAN_1]"),
        (f"Why does the API reject my key {OPENAI_KEY}?", OPENAI_KEY, "[SECRET_1]"),
        (f"Bot token: {SLACK_BOT_TOKEN} (rotated yesterday)", SLACK_BOT_TOKEN, "[SECRET_1]"),
        (f"socket mode wants {SLACK_APP_TOKEN}", SLACK_APP_TOKEN, "[SECRET_1]"),
        (f"export GITHUB_TOKEN={GITHUB_TOKEN}", GITHUB_TOKEN, "[SECRET_1]"),
        (f"the fine-grained PAT is {GITHUB_PAT}.", GITHUB_PAT, "[SECRET_1]"),
        (f"aws_access_key_id = {AWS_KEY_ID}", AWS_KEY_ID, "[SECRET_1]"),
        (f"DISCORD_TOKEN={DISCORD_TOKEN}", DISCORD_TOKEN, "[SECRET_1]"),
    ],
)
def test_each_kind_is_found_and_replaced(message: str, value: str, placeholder: str) -> None:
    placeholders = Placeholders()
    assert redact(message, placeholders) == message.replace(value, placeholder)
    assert placeholders.by_value == {value: placeholder}


def test_bearer_keeps_the_word_and_hides_the_token() -> None:
    placeholders = Placeholders()
    message = f"curl -H 'Authorization: Bearer {JWT}' https://api.example.com/v1/me"
    redacted = redact(message, placeholders)
    assert redacted == "curl -H 'Authorization: Bearer [SECRET_1]' https://api.example.com/v1/me"
    assert placeholders.by_value == {JWT: "[SECRET_1]"}


def test_several_kinds_in_one_message_are_numbered_per_kind_in_text_order() -> None:
    placeholders = Placeholders()
    message = (
        "Refund ada@example.com to card 4111 1111 1111 1111, then email grace@example.org "
        "and call +44 20 7946 0958 or 415-555-0132. Use key " + OPENAI_KEY + "."
    )
    assert redact(message, placeholders) == (
        "Refund [EMAIL_1] to card [CARD_1], then email [EMAIL_2] "
        "and call [PHONE_1] or [PHONE_2]. Use key [SECRET_1]."
    )


def test_a_card_is_not_also_taken_for_a_phone_and_a_token_is_not_split() -> None:
    placeholders = Placeholders()
    message = f"Card 5500-0000-0000-0004, phone 415-555-0132, token {SLACK_BOT_TOKEN}."
    assert redact(message, placeholders) == "Card [CARD_1], phone [PHONE_1], token [SECRET_1]."
    assert set(placeholders.by_value) == {"5500-0000-0000-0004", "415-555-0132", SLACK_BOT_TOKEN}


def test_a_repeated_value_keeps_its_placeholder_across_calls() -> None:
    placeholders = Placeholders()
    first = redact("Please reply to ada@example.com today.", placeholders)
    second = redact("Did you write to ada@example.com? Her card is 4111111111111111.", placeholders)
    assert first == "Please reply to [EMAIL_1] today."
    assert second == "Did you write to [EMAIL_1]? Her card is [CARD_1]."
    assert redact("ada@example.com, ada@example.com", placeholders) == "[EMAIL_1], [EMAIL_1]"
    assert len(placeholders.by_value) == 2


def test_numbering_continues_across_calls() -> None:
    placeholders = Placeholders()
    assert redact("ada@example.com", placeholders) == "[EMAIL_1]"
    assert (
        redact("grace@example.org and +44 20 7946 0958", placeholders) == "[EMAIL_2] and [PHONE_1]"
    )
    assert redact("linus@example.net, 415-555-0132", placeholders) == "[EMAIL_3], [PHONE_2]"


@pytest.mark.parametrize(
    "message",
    [
        "Hi, can you draft a reply to ada@example.com about the invoice?",
        "Call +1 (415) 555-0132 or (415) 555-0132, card 4111 1111 1111 1111, key " + OPENAI_KEY,
        "IBAN DE89 3704 0044 0532 0130 00 and again DE89 3704 0044 0532 0130 00.",
        f"Authorization: Bearer {JWT}\nDiscord: {DISCORD_TOKEN}\nSlack: {SLACK_BOT_TOKEN}",
        "Nothing sensitive here, just a release on 2026-11-25 at 14:30.",
    ],
)
def test_restore_inverts_redact(message: str) -> None:
    placeholders = Placeholders()
    redacted = redact(message, placeholders)
    assert restore(redacted, placeholders) == message


def test_restore_fills_in_the_models_reply_and_leaves_unknown_placeholders() -> None:
    placeholders = Placeholders()
    redact("Write to ada@example.com and call +44 20 7946 0958.", placeholders)
    reply = "I drafted a note to [EMAIL_1] and will call [PHONE_1]; [EMAIL_7], [NAME_1], [email_1]."
    assert restore(reply, placeholders) == (
        "I drafted a note to ada@example.com and will call +44 20 7946 0958; "
        "[EMAIL_7], [NAME_1], [email_1]."
    )


def test_placeholders_survive_a_json_round_trip_and_keep_numbering() -> None:
    placeholders = Placeholders()
    redact("Zoë: zoe@example.com, card 4111 1111 1111 1111", placeholders)
    loaded = Placeholders.from_json(placeholders.to_json())
    assert loaded == placeholders
    assert redact("zoe@example.com and bob@example.com", loaded) == "[EMAIL_1] and [EMAIL_2]"


@pytest.mark.parametrize("text", [None, ""])
def test_empty_json_gives_empty_placeholders(text: str | None) -> None:
    assert Placeholders.from_json(text) == Placeholders(by_value={})


@pytest.mark.parametrize("text", ["not json", "[]", '{"by_value": {"a": 1}}', '{"other": {}}'])
def test_malformed_json_is_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        Placeholders.from_json(text)


@pytest.mark.parametrize(
    "message",
    [
        "The release is scheduled for 2026-11-25, or 25/11/2026 at the latest.",
        "Stand-up at 14:30, retro at 09:15:00 UTC.",
        "Upgrade to Python 3.11.7 and numpy 1.26.4 before Friday.",
        "The server is at 192.168.100.200, the gateway at 10.0.0.1.",
        "Where is my order #12345? Ticket 48213 too.",
        "My card 4111 1111 1111 1112 was declined.",
        "Is 1234567812345678 a valid number? And 1234 5678 9012 3456 7890?",
        "Please wire to DE89 3704 0044 0532 0130 01 instead.",
        "A risk-free plan for the task-force.",
        "She wanted to sk-ate, not to ski.",
        "Request id 123e4567-e89b-12d3-a456-426614174000 failed.",
        "Fixed in commit 9fceb02d0ae598e95dc970b74767f19372d61af8.",
        "The laptop costs $1,299.00 (was €1.499,00).",
        "Log in as user@localhost on the dev box.",
        "See https://docs.example.com/guide?page=2#setup for details.",
        "Tracking number 98765415555013212 is stuck.",
        "Created at 2026-11-25T14:30:00+01:00 by the cron job.",
        "Use icon@2x.png and clone git@github.com:acme/parley.git.",
        "Send a Bearer token in the Authorization header.",
        "The sk-this-is-a-long-kebab-case-name flag is deprecated.",
        "Module some_really_long_module_name_here.submodule.another_really_long_name moved.",
        "Scores went up +12 points, extension 555-0132.",
    ],
)
def test_false_positives_pass_through_unchanged(message: str) -> None:
    placeholders = Placeholders()
    assert redact(message, placeholders) == message
    assert placeholders.by_value == {}


_SAMPLES = [
    "ada@example.com",
    "+44 20 7946 0958",
    "415-555-0132",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    OPENAI_KEY,
    SLACK_BOT_TOKEN,
    "Bearer " + JWT,
]
_TEXTS = st.lists(
    st.one_of(
        st.text(alphabet=st.characters(exclude_characters="[")),
        st.sampled_from(_SAMPLES),
        st.sampled_from([" ", "-", ".", "+", "@", "(", ")", "]", "1", "_"]),
    )
).map("".join)


@given(_TEXTS)
def test_restore_inverts_redact_for_any_text_without_brackets(text: str) -> None:
    placeholders = Placeholders()
    redacted = redact(text, placeholders)
    assert restore(redacted, placeholders) == text
    assert redact(text, placeholders) == redacted
