"""How the page writes a number, in one place for the server's prose: static/format.js writes the same for the figures.

Every format rounds half away from zero on the exact binary value, as JavaScript's `toFixed` and
`toPrecision` do, so a number the server writes and the same number a figure writes read alike.
Tests check the page's numbers against metrics.json through these functions.
"""

from decimal import ROUND_HALF_UP, Decimal

# A no-break space keeps a number and its unit on one line.
NBSP = "\u00a0"
MINUS = "\u2212"
SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
# Below this share a percentage needs a power of ten to be read (0.01 %).
SMALLEST_PLAIN_SHARE = 1e-4


def with_minus(text: str) -> str:
    """The minus sign of a negative number as typeset: "−0.040", not a hyphen."""
    return MINUS + text.removeprefix("-") if text.startswith("-") else text


def fixed(value: float, decimals: int) -> str:
    """`value` with `decimals` decimals, as JavaScript's `value.toFixed(decimals)`."""
    rounded = Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return f"{rounded:.{decimals}f}"


def significant(value: float, digits: int) -> tuple[Decimal, int]:
    """`value` rounded to `digits` significant digits, and the power of ten of its first digit."""
    exact = Decimal(value)
    rounded = exact.quantize(Decimal(1).scaleb(exact.adjusted() - digits + 1), rounding=ROUND_HALF_UP)
    return rounded, rounded.adjusted()


def power(value: float) -> str:
    """5.94e-3 -> "5.9 × 10⁻³": two significant digits and the power of ten, rounded, never truncated."""
    if value == 0:
        return "0"
    rounded, exponent = significant(value, 2)
    mantissa = fixed(float(rounded.scaleb(-exponent)), 1)
    return f"{mantissa} × 10{str(exponent).translate(SUPERSCRIPTS)}"


def percent(share: float) -> str:
    """A share as a percentage: "55.3 %" (one decimal) from 1 %, two significant digits below ("0.84 %"), a power of ten below 0.01 %."""
    magnitude = abs(share)
    if magnitude >= 0.01 or share == 0:
        return f"{with_minus(fixed(share * 100, 1 if share else 0))}{NBSP}%"
    if magnitude >= SMALLEST_PLAIN_SHARE:
        rounded, exponent = significant(share * 100, 2)
        return f"{with_minus(fixed(float(rounded), max(0, 1 - exponent)))}{NBSP}%"
    return f"{power(share * 100)}{NBSP}%"


def join_ends(low: str, high: str) -> str:
    """The ends of an interval joined by an en dash, or by "to" where one is negative ("−0.001 to 0.002")."""
    return f"{low}{' to ' if MINUS in (low[:1], high[:1]) else '–'}{high}"


def interval(bounds: list[float] | tuple[float, float]) -> str:
    """A 95 % interval of shares: "49.8–50.2 %" (each end as `percent` writes it, the unit once)."""
    low, high = (percent(bound).removesuffix(f"{NBSP}%") for bound in bounds)
    return f"{join_ends(low, high)}{NBSP}%"


def nats_interval(bounds: list[float] | tuple[float, float]) -> str:
    """A 95 % interval in nats: "2.250–2.270"."""
    return join_ends(nats(bounds[0]), nats(bounds[1]))


def points(difference: float) -> str:
    """A difference of two shares in percentage points, unsigned: "2.0 points"."""
    return f"{fixed(abs(difference) * 100, 1)}{NBSP}points"


def large(value: float) -> str:
    """179997436 -> "180 million", 96425312 -> "96.4 million": three significant digits, trailing zeros dropped; smaller with separators."""
    for scale, name in ((1e9, "billion"), (1e6, "million")):
        if value >= scale:
            rounded, _ = significant(value / scale, 3)
            return f"{rounded.normalize():f}{NBSP}{name}"
    return count(value)


def count(value: float) -> str:
    """25391 -> "25,391"."""
    return f"{round(value):,}"


def nats(value: float) -> str:
    """A cross-entropy or a change in nats, three decimals: "2.261", "−0.040"."""
    return with_minus(fixed(value, 3))


def millions(characters: float) -> str:
    """179997436 -> "180.0 million": one decimal, so legs of training add up to their total."""
    return f"{fixed(characters / 1e6, 1)}{NBSP}million"


def duration(seconds: float) -> str:
    """5432 seconds -> "1 h 31 min"; under two minutes in seconds."""
    if seconds < 120:
        return f"{fixed(seconds, 0)}{NBSP}s"
    minutes = int(fixed(seconds / 60, 0))
    if minutes < 60:
        return f"{minutes}{NBSP}min"
    return f"{minutes // 60}{NBSP}h {minutes % 60}{NBSP}min"


FORMATS = {
    "percent": percent, "interval": interval, "points": points, "count": count, "nats": nats, "nats_interval": nats_interval, "power": power,
    "millions": millions, "large": large, "duration": duration,
}


def formatted(format: str, value: float | list[float] | None) -> str:
    """`value` written in the format named `format` (a key of FORMATS, as the page's [data-format] attributes name them);
    a dash for a number an older record lacks, so that the page still renders."""
    if value is None:
        return "–"
    return FORMATS[format](value)  # type: ignore[operator]
