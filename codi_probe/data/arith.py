"""Exact, safe evaluation of GSM8K calculator annotations ``<<expr=result>>``.

Only ``+ - * /``, unary minus (and unary plus, which GSM8K writes, e.g. ``<<+8=8>>``),
parentheses and plain decimal literals (``12``, ``1.5``, ``.5``) are accepted; the expression is
parsed with ``ast.parse(mode="eval")`` and only those nodes are walked, never ``eval``'d.
Arithmetic is exact (``fractions.Fraction``); division by zero raises ``ZeroDivisionError``.
"""

from __future__ import annotations

import ast
import operator
import re
from dataclasses import dataclass
from fractions import Fraction

MAX_EXPRESSION_CHARS = 500
"""Longest accepted expression (GSM8K's longest annotation is well under 100 characters)."""

LITERAL_RE = re.compile(r"\d+\.?\d*|\.\d+")
"""A plain decimal literal, as GSM8K annotations write numbers (no sign, exponent or underscore)."""

ANNOTATION_RE = re.compile(r"<<([^<>]*)>>")

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}


class UnsafeExpressionError(ValueError):
    """The text is not a plain arithmetic expression this evaluator accepts."""


def _refuse(expr: str, why: str) -> UnsafeExpressionError:
    shown = expr if len(expr) <= 60 else expr[:57] + "..."
    return UnsafeExpressionError(f"refused expression {shown!r}: {why}")


def safe_eval(expr: str) -> Fraction:
    """Exact value of an arithmetic expression; raises ``UnsafeExpressionError`` on anything else."""
    if not isinstance(expr, str):
        raise _refuse(repr(expr), f"expected str, got {type(expr).__name__}")
    src = expr.strip()
    if len(src) > MAX_EXPRESSION_CHARS:
        raise _refuse(src, f"longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(src, mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        raise _refuse(src, f"not a valid expression ({type(exc).__name__})") from None
    for node in ast.walk(tree.body):
        _check(node, src)
    try:
        return _value(tree.body, src)
    except ZeroDivisionError:
        raise ZeroDivisionError(f"division by zero in {src!r}") from None


def _check(node: ast.AST, src: str) -> None:
    """Refuse every node that is not + - * /, unary -/+ or a plain decimal literal."""
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return
    if type(node) in _BINARY or type(node) in _UNARY:
        return
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        text = ast.get_source_segment(src, node) or ""
        if LITERAL_RE.fullmatch(text):
            return
        raise _refuse(src, f"number literal {text!r} is not a plain decimal")
    what = type(node.op).__name__ if isinstance(node, ast.BinOp | ast.UnaryOp) else type(node).__name__
    raise _refuse(src, f"{what} is not allowed (only + - * /, unary -/+, parentheses, numbers)")


def _value(node: ast.AST, src: str) -> Fraction:
    """Evaluate a tree that ``_check`` accepted."""
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)](_value(node.left, src), _value(node.right, src))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_value(node.operand, src))
    return Fraction(ast.get_source_segment(src, node))


@dataclass(frozen=True)
class Annotation:
    """One calculator step ``expr=result``: ``stated`` is the written result, ``value`` the exact one."""

    expr: str
    stated: Fraction
    value: Fraction

    @property
    def consistent(self) -> bool:
        """Whether the expression evaluates exactly to the written result."""
        return self.value == self.stated

    def __str__(self) -> str:
        return f"{self.expr}={format_number(self.stated)}"


def evaluate_annotation(annotation: str) -> Annotation:
    """Parse and evaluate ``<<expr=result>>`` (the angle brackets are optional)."""
    body = annotation.strip()
    if body.startswith("<<") and body.endswith(">>"):
        body = body[2:-2]
    if body.count("=") != 1:
        raise _refuse(body, "an annotation needs exactly one '=' (expr=result)")
    expr, result = body.split("=")
    return Annotation(expr=expr, stated=safe_eval(result), value=safe_eval(expr))


def find_annotations(text: str) -> list[str]:
    """The bodies ``expr=result`` of all ``<<...>>`` annotations in a solution, in order."""
    return ANNOTATION_RE.findall(text)


def format_number(value: Fraction) -> str:
    """Write an exact value the way an annotation can read it back.

    Integers as digits, terminating decimals as decimals, other rationals as ``(p/q)``;
    negative values are parenthesised so they can be substituted into any expression.
    """
    if value.denominator == 1:
        text = str(value.numerator)
    else:
        text = _decimal_text(abs(value))
        text = text if text is not None else f"{abs(value.numerator)}/{value.denominator}"
        if value < 0 or "/" in text:
            return f"({'-' if value < 0 else ''}{text})"
        return text
    return f"({text})" if value < 0 else text


def _decimal_text(value: Fraction) -> str | None:
    """Exact decimal expansion of a non-negative rational, or None if it does not terminate."""
    den, digits = value.denominator, 0
    for prime in (2, 5):
        count = 0
        while den % prime == 0:
            den //= prime
            count += 1
        digits = max(digits, count)
    if den != 1:
        return None
    scaled = value.numerator * 10**digits // value.denominator
    whole, frac = divmod(scaled, 10**digits)
    return f"{whole}.{frac:0{digits}d}".rstrip("0").rstrip(".")
