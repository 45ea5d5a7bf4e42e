import pytest

from models.phones import normalize_contact_phone, normalize_phone

MOBILE = "+8613800138000"


@pytest.mark.parametrize(
    "raw",
    [
        "13800138000",
        "+86 138 0013 8000",
        "86-138-0013-8000",
        "008613800138000",
        "8613800138000",
        "+8613800138000",
        " 138.0013.8000 ",
        "(+86) 138 0013 8000",
        "１３８００１３８０００",  # full-width digits from a Chinese input method
        "＋86 13800138000",
        "'+8613800138000",  # kept as text in Excel, or by our own CSV export
    ],
)
def test_mainland_mobiles_in_any_spelling_become_e164(raw: str) -> None:
    assert normalize_phone(raw) == MOBILE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+44 20 7946 0958", "+442079460958"),
        ("+1 (415) 555-0100", "+14155550100"),
        ("00852 9123 4567", "+85291234567"),
    ],
)
def test_international_numbers_with_a_prefix_keep_their_country(raw: str, expected: str) -> None:
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "1380013800",  # ten digits
        "138001380001",  # twelve digits
        "12800138000",  # no mainland mobile starts with 12
        "0971-1234567",  # a landline without a country code
        "+86 971 1234567",  # a +86 landline: posts are reached on mobiles
        "+86 138 0013 800",  # a +86 mobile one digit short
        "+0 123 4567",  # no country code starts with 0
        "+1234567890123456",  # sixteen digits: longer than E.164 allows
        "+12345",
        "138-0013-800O",  # a letter O for a zero
        "447700900123",  # a foreign number without its + is not guessed at
        "٠١٣٨٠٠١٣٨٠٠٠",  # Arabic-Indic digits
        "+86+13800138000",
    ],
)
def test_malformed_numbers_are_refused(raw: str) -> None:
    assert normalize_phone(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8613800138000", MOBILE),
        ("+8613800138000", MOBILE),
        ("447700900123", "+447700900123"),
        ("+447700900123", "+447700900123"),
        ("86 971 1234567", None),
    ],
)
def test_telegram_contacts_are_international_with_or_without_plus(
    raw: str, expected: str | None
) -> None:
    assert normalize_contact_phone(raw) == expected
