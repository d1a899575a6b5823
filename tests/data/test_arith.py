"""Safe exact evaluator for calculator annotations."""

import ast
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import codi_probe.data.arith as arith
from codi_probe.data.arith import (
    MAX_EXPRESSION_CHARS,
    UnsafeExpressionError,
    evaluate_annotation,
    find_annotations,
    format_number,
    safe_eval,
)
from codi_probe.data.loaders import load_gsm8k


@st.composite
def literals(draw):
    """(text, exact value) of a plain decimal literal: 12, 1.5, .25, 3."""
    whole = draw(st.integers(0, 10**6))
    digits = draw(st.integers(0, 3))
    frac = draw(st.integers(0, 10**digits - 1)) if digits else 0
    style = draw(st.sampled_from(["int", "dec", "bare", "dot"]))
    if style == "int" or digits == 0:
        return (f"{whole}." if style == "dot" else str(whole)), Fraction(whole)
    frac_text = f"{frac:0{digits}d}"
    text = f".{frac_text}" if style == "bare" else f"{whole}.{frac_text}"
    return text, Fraction(text)


OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": lambda a, b: a / b}


def combine(children):
    """A parenthesised binary node (optionally negated); value None once a division by zero occurs."""

    def build(left, right, op, neg, spaced):
        (lt, lv), (rt, rv) = left, right
        value = None if lv is None or rv is None or (op == "/" and rv == 0) else OPS[op](lv, rv)
        text = f"({lt} {op} {rt})" if spaced else f"({lt}{op}{rt})"
        if neg:
            text, value = f"-{text}", None if value is None else -value
        return text, value

    return st.builds(build, children, children, st.sampled_from("+-*/"), st.booleans(), st.booleans())


expressions = st.recursive(literals(), combine, max_leaves=10)


@settings(max_examples=300, deadline=None, database=None)
@given(expressions)
def test_agrees_with_exact_rational_arithmetic(expr):
    text, expected = expr
    if expected is None:  # some division by zero on the way
        with pytest.raises(ZeroDivisionError):
            safe_eval(text)
    else:
        assert safe_eval(text) == expected


def chain_value(values, ops):
    """Reference for an unparenthesised chain: fold * and / into terms, then + and - left to right."""
    terms, signs, current = [], ["+"], values[0]
    for op, value in zip(ops, values[1:]):
        if op in "*/":
            current = OPS[op](current, value)
        else:
            terms.append(current)
            signs.append(op)
            current = value
    terms.append(current)
    return sum(term if sign == "+" else -term for sign, term in zip(signs, terms))


@settings(max_examples=100, deadline=None, database=None)
@given(st.lists(literals(), min_size=1, max_size=8), st.data())
def test_precedence_of_unparenthesised_chains(leaves, data):
    ops = data.draw(st.lists(st.sampled_from("+-*/"), min_size=len(leaves) - 1, max_size=len(leaves) - 1))
    text = leaves[0][0] + "".join(op + leaf for op, (leaf, _) in zip(ops, leaves[1:]))
    try:
        expected = chain_value([v for _, v in leaves], ops)
    except ZeroDivisionError:
        with pytest.raises(ZeroDivisionError):
            safe_eval(text)
        return
    assert safe_eval(text) == expected


@settings(database=None)
@given(st.fractions(max_denominator=10**6))
def test_format_number_roundtrips_and_substitutes(value):
    text = format_number(value)
    assert safe_eval(text) == value
    assert safe_eval(f"7-{text}*2") == 7 - value * 2
    if value != 0:
        assert safe_eval(f"3/{text}") == 3 / value


@pytest.mark.parametrize(
    ("expr", "value"),
    [("16-3-4", 9), ("2/.5", 4), ("-(3-5)*2", 4), ("+8", 8), ("1.75-(-1.25)", 3), ("0.1+0.2", Fraction(3, 10))],
)
def test_known_values(expr, value):
    assert safe_eval(expr) == value


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('true')",
        "().__class__.__bases__",
        "(1).real",
        "x",
        "abs(-1)",
        "2**1000000",
        "9**9**9",
        "2^3",
        "[i for i in (1, 2)]",
        "{1: 2}",
        "'1' + '2'",
        "b'1'",
        "1e308*10",
        "1_000",
        "0x1f",
        "1j",
        "True + 1",
        "None",
        "(lambda: 1)()",
        "1 if 1 else 0",
        "1 < 2",
        "1 // 2",
        "7 % 2",
        "~1",
        "(x := 1)",
        "1, 2",
        "",
        "1 +",
        "1+" * MAX_EXPRESSION_CHARS + "1",
        "(" * 300 + "1" + ")" * 300,
    ],
)
def test_refuses_everything_else(expr):
    with pytest.raises(UnsafeExpressionError) as info:
        safe_eval(expr)
    message = str(info.value)
    assert message.startswith("refused expression") and "\n" not in message


def test_refuses_non_string():
    with pytest.raises(UnsafeExpressionError):
        safe_eval(3)  # type: ignore[arg-type]


def test_unsafe_error_is_a_value_error():
    assert issubclass(UnsafeExpressionError, ValueError)


def test_division_by_zero_names_the_expression():
    with pytest.raises(ZeroDivisionError, match=r"1/\(2-2\)"):
        safe_eval("1/(2-2)")


def test_module_never_calls_eval_exec_or_compile():
    tree = ast.parse(Path(arith.__file__).read_text())
    called = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not called & {"eval", "exec", "compile", "__import__"}


def test_evaluate_annotation():
    step = evaluate_annotation("<<16-3-4=9>>")
    assert (step.expr, step.stated, step.value, step.consistent) == ("16-3-4", 9, 9, True)
    rounded = evaluate_annotation("10/3=3.33")
    assert rounded.value == Fraction(10, 3) and not rounded.consistent
    assert str(evaluate_annotation("7/2=3.50")) == "7/2=3.5"


@pytest.mark.parametrize("bad", ["1+1", "1=1=1", "<<a=1>>", "<<1=b>>"])
def test_evaluate_annotation_refuses(bad):
    with pytest.raises(UnsafeExpressionError):
        evaluate_annotation(bad)


def test_every_gsm8k_test_annotation_is_exact():
    annotations = [a for p in load_gsm8k("test") for a in find_annotations(p.meta["solution"])]
    assert len(annotations) == 4282
    assert all(evaluate_annotation(a).consistent for a in annotations)
