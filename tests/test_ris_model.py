"""Device model: element ordering / bit packing, Pattern validation, calibration files, quantiser."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ris_driver import BoardSpec, Pattern, coefficients, quantize
from ris_driver.device import pack_states, unpack_states, wire_permutation
from ris_driver.quantize import quantization_error


def reference_hex(states_rc: np.ndarray, bits: int, order: str, bit_order: str) -> str:
    """Independent packer on Python strings: states_rc is (rows, cols)."""
    wire = states_rc.ravel() if order == "row" else states_rc.T.ravel()
    s = "".join(format(int(v), f"0{bits}b") for v in wire)
    s += "0" * ((-len(s)) % 8)
    byts = [s[i:i + 8] for i in range(0, len(s), 8)]
    if bit_order == "lsb":
        byts = [b[::-1] for b in byts]
    return "".join(f"{int(b, 2):02X}" for b in byts)


@pytest.mark.parametrize("order,bit_order,expected", [
    ("row", "msb", "C4"),       # 11 00 01 00
    ("row", "lsb", "23"),       # byte reversed: 0010 0011
    ("col", "msb", "D0"),       # wire order (0,0),(1,0),(0,1),(1,1) = 3,1,0,0 -> 11 01 00 00
    ("col", "lsb", "0B"),
])
def test_pack_2x2_examples(order, bit_order, expected):
    b = BoardSpec(rows=2, cols=2, bits=2, wire_order=order, bit_order=bit_order)
    states = np.array([3, 0, 1, 0])       # logical row-major: (0,0)=3 (0,1)=0 (1,0)=1 (1,1)=0
    assert pack_states(states, 2, b) == expected
    assert np.array_equal(unpack_states(expected, 2, b), states)


def test_open_source_ris_element_map():
    """OpenSourceRIS: element (r, c) is bit r*16+c of the hex string, MSB first (firmware main.c reverses
    each byte and shifts bit 0 first, i.e. the hex MSB is the first element of the row)."""
    b = BoardSpec.open_source_ris()
    for (r, c) in [(0, 0), (0, 7), (1, 0), (15, 15), (3, 9)]:
        ph = np.zeros(256, np.int64)
        ph[r * 16 + c] = 1
        hx = Pattern.from_arrays(ph).to_hex(b)[0]
        k = r * 16 + c
        expected = bytearray(32)
        expected[k // 8] = 0x80 >> (k % 8)
        assert hx == expected.hex().upper()


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 5), st.integers(1, 6), st.integers(1, 4), st.sampled_from(["row", "col"]),
       st.sampled_from(["msb", "lsb"]), st.integers(0, 2**32 - 1))
def test_pack_matches_reference_and_roundtrips(rows, cols, bits, order, bit_order, seed):
    b = BoardSpec(rows=rows, cols=cols, bits=bits, wire_order=order, bit_order=bit_order)
    s = np.random.default_rng(seed).integers(0, 2**bits, b.n)
    hx = pack_states(s, bits, b)
    assert hx == reference_hex(s.reshape(rows, cols), bits, order, bit_order)
    assert np.array_equal(unpack_states(hx, bits, b), s)


def test_wire_permutation_is_permutation():
    b = BoardSpec(rows=3, cols=5, wire_order="col")
    perm = wire_permutation(b)
    assert sorted(perm) == list(range(15))
    assert perm[1] == 5           # second wire element is (row 1, col 0) = logical 5


def test_pattern_validation_names_field():
    b = BoardSpec(rows=2, cols=2, bits=1, amp_states=("off", "on"), amp_scope="array")
    with pytest.raises(ValueError, match="Pattern.phase: expected 4"):
        Pattern((0, 1, 0), (1,)).validate(b)
    with pytest.raises(ValueError, match="Pattern.phase: expected states in 0..1"):
        Pattern((0, 2, 0, 0), (1,)).validate(b)
    with pytest.raises(ValueError, match="Pattern.amp: expected 1"):
        Pattern((0, 1, 0, 1), ()).validate(b)
    with pytest.raises(ValueError, match="Pattern.amp: expected states"):
        Pattern((0, 1, 0, 1), (2,)).validate(b)
    with pytest.raises(ValueError, match="phase hex"):
        Pattern.from_hex(b, "ABC", "")
    with pytest.raises(TypeError, match="Pattern.phase: expected a sequence of integer"):
        Pattern((0.5, 1, 0, 1), (1,))                   # never silently truncated
    p = Pattern((0, 1, 0, 1), (1,))
    assert hash(p) == hash(Pattern([0, 1, 0, 1], [1])) and p == Pattern([0, 1, 0, 1], [1])
    with pytest.raises(Exception):
        p.phase = (1, 1, 1, 1)          # frozen


@pytest.mark.parametrize("kw,field", [
    (dict(rows=0, cols=2), "rows"), (dict(rows=2, cols=2, bits=5), "bits"),
    (dict(rows=2, cols=2, amp_scope="some"), "amp_scope"),
    (dict(rows=2, cols=2, gamma=np.ones((4, 3))), "gamma"),
    (dict(rows=2, cols=2, wire_order="diag"), "wire_order"),
])
def test_boardspec_validation(kw, field):
    with pytest.raises(ValueError, match=field):
        BoardSpec(**kw)


@pytest.mark.parametrize("n", [16, 100])
def test_calibration_file_roundtrip(tmp_path, n):
    rng = np.random.default_rng(1)
    g = rng.normal(size=(n, 4, 2)) + 1j * rng.normal(size=(n, 4, 2))
    b = BoardSpec(rows=n // 4 if n == 16 else 10, cols=4 if n == 16 else 10, bits=2,
                  amp_states=("passive", "active"), amp_scope="element", gamma=g, name="calA")
    path = b.save(tmp_path / "board.json")
    d = json.loads(path.read_text())
    assert ("gamma" in d) == (n <= 64) and ("gamma_file" in d) == (n > 64)
    b2 = BoardSpec.load(path)
    assert np.array_equal(b2.gamma, g)
    assert (b2.rows, b2.cols, b2.bits, b2.amp_states, b2.amp_scope, b2.name) == \
           (b.rows, b.cols, 2, ("passive", "active"), "element", "calA")


def test_calibration_file_errors(tmp_path):
    p = tmp_path / "x.json"
    p.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        BoardSpec.load(p)
    p.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="format"):
        BoardSpec.load(p)


# ---------------------------------------------------------------------------------------------------
# quantiser
# ---------------------------------------------------------------------------------------------------
def brute_force(coef, b: BoardSpec):
    """Exhaustive search over every (phase state, amp state) assignment the scope allows."""
    g = b.gamma
    best, arg = np.inf, None
    amp_choices = {"none": [(0,) * b.n], "array": [(a,) * b.n for a in range(b.n_amp)],
                   "element": list(itertools.product(range(b.n_amp), repeat=b.n))}[b.amp_scope]
    for amps in amp_choices:
        for ph in itertools.product(range(b.n_phase), repeat=b.n):
            c = sum(abs(coef[n] - g[n, ph[n], amps[n]]) ** 2 for n in range(b.n))
            if c < best - 1e-12:
                best, arg = c, (ph, amps)
    return best, arg


@pytest.mark.parametrize("scope,n_amp,bits", [("none", 1, 1), ("none", 1, 2), ("array", 3, 1), ("element", 2, 1)])
def test_quantize_matches_brute_force(scope, n_amp, bits):
    rng = np.random.default_rng(7)
    for trial in range(5):
        g = rng.normal(size=(3, 2**bits, n_amp)) + 1j * rng.normal(size=(3, 2**bits, n_amp))
        b = BoardSpec(rows=1, cols=3, bits=bits, amp_states=tuple(f"a{i}" for i in range(n_amp)),
                      amp_scope=scope, gamma=g)
        coef = rng.normal(size=3) + 1j * rng.normal(size=3)
        p = quantize(coef, b)
        best, _ = brute_force(coef, b)
        got = np.sum(np.abs(coef - coefficients(p, b)) ** 2)
        assert got == pytest.approx(best, rel=1e-12, abs=1e-12)


def test_quantize_ideal_tables():
    rng = np.random.default_rng(3)
    phi = np.exp(1j * rng.uniform(-np.pi, np.pi, 64))
    b1 = BoardSpec(rows=8, cols=8, bits=1)
    p1 = quantize(phi, b1)
    assert np.array_equal(p1.phase_array, (phi.real < 0).astype(int))      # +1 / -1 table -> sign of Re
    b2 = BoardSpec(rows=8, cols=8, bits=2)
    p2 = quantize(phi, b2)
    expected = np.mod(np.round(np.angle(phi) / (np.pi / 2)), 4).astype(int)
    assert np.array_equal(p2.phase_array, expected)
    # 2-bit rounding error is at most 45 degrees
    err = np.abs(np.angle(phi * np.conj(coefficients(p2, b2))))
    assert err.max() <= np.pi / 4 + 1e-12
    assert quantization_error(phi, b2).max() <= 2 * np.sin(np.pi / 8) + 1e-12


def test_quantize_recovers_table_entries_and_forced_amp():
    rng = np.random.default_rng(5)
    g = rng.normal(size=(6, 4, 3)) + 1j * rng.normal(size=(6, 4, 3))
    b = BoardSpec(rows=2, cols=3, bits=2, amp_states=("off", "passive", "active"), amp_scope="element", gamma=g)
    p = Pattern.random(b, rng)
    assert quantize(coefficients(p, b), b) == p                # exact table values map back to themselves
    q = quantize(coefficients(p, b), b, amp_state=2)
    assert q.amp == (2,) * 6
    with pytest.raises(ValueError, match="amp_state"):
        quantize(coefficients(p, b), b, amp_state=3)
    with pytest.raises(ValueError, match="coef: expected shape"):
        quantize(np.ones(5), b)
    with pytest.raises(ValueError, match="finite"):
        quantize(np.full(6, np.nan + 0j), b)
