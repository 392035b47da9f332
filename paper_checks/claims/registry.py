"""The claim registry: ``@claim(...)`` declares a checkable claim, :func:`evaluate` runs a group of them.

A claim has a ``source``, a ``check`` and a ``tolerance`` fixed before looking at any run; its check function
takes the group's evidence and returns ``(ok, measured)``.  Its status is ``pass`` or ``fail`` (``measured``
holds the numbers), ``n/a`` (the check raised :class:`NotApplicable` with the reason: not evaluable on this
input) or ``error`` (any other exception: a toolkit bug, its traceback in ``detail``, exit code 1).
``verification`` claims (symbolic identities, simulated dynamics, exact identities on a run) test the toolkit
itself, so their failure is a toolkit error too; the other empirical claims are observations of a run.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any

from theory.jsonio import jsonable

__all__ = [
    "STATUSES",
    "Claim",
    "ClaimSpec",
    "NotApplicable",
    "GROUP_HEADLINES",
    "REGISTRY",
    "all_passed",
    "claim",
    "counts",
    "error_claim",
    "evaluate",
    "exit_code",
    "headline_of",
    "run_check",
]

#: The four statuses of a claim, in report order.
STATUSES = ("pass", "fail", "n/a", "error")


class NotApplicable(Exception):
    """Raised by a check when its claim cannot be evaluated on this input (the message is the reason).

    ``measured`` (optional) keeps the numbers that were computed before the check gave up.
    """

    def __init__(self, reason: str, measured: Any = None):
        super().__init__(reason)
        self.reason = reason
        self.measured = measured


@dataclass
class Claim:
    """One checkable claim and its result."""

    id: str
    statement: str
    source: str
    check: str
    tolerance: str
    status: str = "error"
    measured: Any = None
    group: str = ""
    detail: str = ""  # the reason (n/a) or the traceback (error)
    verification: bool = False

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"claim {self.id}: status must be one of {STATUSES}, got {self.status!r}")
        if not self.group:
            self.group = self.id.split(".", 1)[0]
        if not self.verification:  # registered claims know; symbolic and dynamics claims verify the toolkit
            spec = REGISTRY.get(self.id)
            self.verification = spec.template.verification if spec else self.group in ("symbolic", "dynamics")

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))


Check = Callable[[Any], "tuple[bool, Any]"]


@dataclass(frozen=True)
class ClaimSpec:
    """A registered claim: the claim before any result (``template``: its text, group and ``verification``), its
    check and the one-line headline of its measured numbers."""

    template: Claim
    fn: Check
    headline: Callable[[dict], str] | None = None


#: Every registered claim, by id, in registration order (the order of the report).
REGISTRY: dict[str, ClaimSpec] = {}
#: Headlines of claims built at run time rather than registered (the certificate's sections), by group.
GROUP_HEADLINES: dict[str, Callable[[dict], str]] = {}


def claim(id: str, statement: str, source: str, tolerance: str, *, check: str, verification: bool = False,
          headline: Callable[[dict], str] | None = None) -> Callable[[Check], Check]:
    """Register the decorated function ``fn(evidence) -> (ok, measured)`` as the check of claim ``id``.

    The group is the part of ``id`` before the first dot (``"dynamics.closed_form"`` -> ``"dynamics"``).
    ``headline(measured) -> str`` summarises the deciding numbers in one line (report and terminal).
    """
    def register(fn: Check) -> Check:
        if id in REGISTRY:
            raise ValueError(f"claim {id!r} is registered twice")
        template = Claim(id=id, statement=statement, source=source, check=check, tolerance=tolerance)
        template.verification = verification  # as registered (the group default is for unregistered claims only)
        REGISTRY[id] = ClaimSpec(template, fn, headline)
        return fn

    return register


def run_check(spec: ClaimSpec, fn: Callable[[], tuple[bool, Any]]) -> Claim:
    """Run ``fn() -> (ok, measured)`` and turn its outcome into a :class:`Claim` of ``spec`` (see the statuses)."""
    try:
        ok, measured = fn()
    except NotApplicable as exc:
        return replace(spec.template, status="n/a", detail=exc.reason,
                       measured=exc.measured if exc.measured is not None else {"reason": exc.reason})
    except Exception as exc:  # noqa: BLE001 - not expected by the check: a toolkit bug, reported with its traceback
        return replace(spec.template, status="error", measured={"error": f"{type(exc).__name__}: {exc}"},
                       detail=traceback.format_exc())
    return replace(spec.template, status="pass" if bool(ok) else "fail", measured=measured)


def evaluate(group: str, evidence: Any, *, ids: Iterable[str] | None = None) -> list[Claim]:
    """Evaluate every registered claim of ``group`` (or only ``ids``) on ``evidence``, in registration order."""
    wanted = None if ids is None else set(ids)
    specs = [s for s in REGISTRY.values() if s.template.group == group and (wanted is None or s.template.id in wanted)]
    if not specs:
        raise ValueError(f"no registered claims in group {group!r}")
    return [run_check(s, partial(s.fn, evidence)) for s in specs]


def headline_of(claim: Claim) -> str | None:
    """The registered one-line headline of ``claim``'s measured numbers (None when it has none or it fails)."""
    spec = REGISTRY.get(claim.id)
    fn = spec.headline if spec is not None else GROUP_HEADLINES.get(claim.group)
    m = claim.to_dict()["measured"]
    if fn is None or claim.status in ("n/a", "error") or not isinstance(m, dict):
        return None
    try:
        return fn(m)
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def error_claim(id: str, statement: str, source: str, error: str, detail: str, group: str) -> Claim:
    """An ``error`` claim: a stage, run or ladder that raised (``error``: its one line, ``detail``: its traceback),
    a verification claim so that it sets the exit code (:func:`exit_code`)."""
    return Claim(id=id, statement=statement, source=source, check="no exception", tolerance="no error",
                 status="error", measured={"error": error}, detail=detail, group=group, verification=True)


def all_passed(claims: Sequence[Claim]) -> bool:
    """True iff every claim passed (and there is at least one)."""
    return bool(claims) and all(c.passed for c in claims)


def counts(claims: Sequence[Claim]) -> dict[str, int]:
    """Number of claims per status (every status present, zeros included)."""
    return {s: sum(c.status == s for c in claims) for s in STATUSES}


def exit_code(claims: Sequence[Claim], *, strict: bool = False) -> int:
    """1 when a claim is ``error`` or a verification claim fails (with ``strict``, when any claim fails); else 0.

    ``n/a`` never changes the exit code: the claim could not be evaluated on this input, and the report says why.
    """
    for c in claims:
        if c.status == "error" or (c.status == "fail" and (strict or c.verification)):
            return 1
    return 0

