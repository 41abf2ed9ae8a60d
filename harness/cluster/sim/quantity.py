"""Resource quantities (``"250m"``, ``"1.5"``, ``"512Mi"``, ``"1G"``) as numbers.

Why: the scheduler sums requests, the runtime turns limits into Docker's
``nano_cpus``/``mem_limit``, and validation checks that GPU counts are whole.
All of them need ``resource.Quantity`` parsing with the same rules.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX = {
    "": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("0.001"), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9, "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
}
_RE = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$")


def parse_quantity(q: object) -> Decimal:
    """The value of a quantity, in base units (cores, bytes, count)."""
    if isinstance(q, (int, float)):
        return Decimal(str(q))
    m = _RE.match(str(q).strip())
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {q!r}")
    try:
        return Decimal(m.group(1)) * _SUFFIX[m.group(2)]
    except InvalidOperation as exc:
        raise ValueError(f"invalid quantity {q!r}") from exc


def milli(q: object) -> int:
    """Millis, rounded up as ``Quantity.MilliValue`` does."""
    v = parse_quantity(q) * 1000
    return int(v) if v == int(v) else int(v) + (1 if v > 0 else 0)


def quantity_str(q: object) -> str:
    """Canonical-ish rendering: whole numbers plain, fractions in ``m``."""
    v = parse_quantity(q)
    if v == int(v):
        return str(int(v))
    return f"{milli(q)}m"
