"""Masking of caller numbers (ivr.privacy)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ivr.privacy import mask_digit_runs, mask_number


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4421015205", "******5205"),
        ("+524421015205", "+********5205"),
        ("+52 442 101 5205", "+** *** *** 5205"),
        ("(442) 101-5205", "(***) ***-5205"),
        ("15205", "*5205"),
        ("5205", "****"),
        ("7", "*"),
        ("", ""),
        ("unknown", "unknown"),
        ("anonymous", "anonymous"),
        ("<unknown>", "<unknown>"),
    ],
)
def test_mask_number(value: str, expected: str) -> None:
    assert mask_number(value) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call from 4421015205", "call from ******5205"),
        ("from +524421015205 to 911", "from +********5205 to 911"),
        ("PJSIP/4421015205-00000001", "PJSIP/******5205-00000001"),
        ("Local/4421015205@ivr-0000002a;1 up", "Local/******5205@ivr-0000002a;1 up"),
        ("SIP/trunk-0000001f hung up", "SIP/trunk-0000001f hung up"),
        ("opened 2026-12-04 at 08:00", "opened 2026-12-04 at 08:00"),
        ("short 123456 stays", "short 123456 stays"),
        ("seven 1234567 goes", "seven ***4567 goes"),
        ("a 12345678 b 4421015205", "a ****5678 b ******5205"),
        ("4421015205,4421015206", "******5205,******5206"),
        ("no digits here", "no digits here"),
        ("", ""),
    ],
)
def test_mask_digit_runs(text: str, expected: str) -> None:
    assert mask_digit_runs(text) == expected


def test_mask_digit_runs_masks_digits_that_only_look_like_a_channel_suffix() -> None:
    # Eight digits after a dash are kept only as an Asterisk channel's sequence number.
    assert mask_digit_runs("ref-44210152 x") == "ref-****0152 x"


@given(st.text(alphabet="0123456789", min_size=5, max_size=40))
def test_mask_number_reveals_only_the_last_four_digits(digits: str) -> None:
    masked = mask_number(digits)
    assert len(masked) == len(digits)
    assert masked[-4:] == digits[-4:]
    assert set(masked[:-4]) == {"*"}


@given(st.text(alphabet="0123456789", max_size=4))
def test_mask_number_hides_short_numbers_completely(digits: str) -> None:
    assert mask_number(digits) == "*" * len(digits)


@given(
    st.text(alphabet="abc :=", max_size=10),
    st.text(alphabet="0123456789", min_size=7, max_size=20),
    st.text(alphabet="xyz .,", max_size=10),
)
def test_mask_digit_runs_hides_long_runs_in_any_text(prefix: str, run: str, suffix: str) -> None:
    masked = mask_digit_runs(prefix + run + suffix)
    assert masked == prefix + "*" * (len(run) - 4) + run[-4:] + suffix
