"""ris1 codec: CRC vectors, a table of exact bytes, PROTOCOL.md examples, and parser properties.

Expected CRCs are computed independently with ``binascii.crc_hqx(data, 0xFFFF)`` (the C library's
CRC-CCITT with init 0xFFFF, which is CRC-16/CCITT-FALSE), never copied from ``frames.py`` output.
"""
from __future__ import annotations

import binascii
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ris_driver import frames as fr
from ris_driver.errors import RisProtocolError

PROTOCOL_MD = Path(__file__).resolve().parents[1] / "ris_driver" / "PROTOCOL.md"


def framed(body: str) -> bytes:
    """Independent framing: body + '*' + CRC-16/CCITT-FALSE (binascii) + LF."""
    b = body.encode("ascii")
    return b + b"*%04X\n" % binascii.crc_hqx(b, 0xFFFF)


def test_crc16_ccitt_false_check_value():
    assert fr.crc16_ccitt_false(b"123456789") == 0x29B1          # catalogue check value
    assert fr.crc16_ccitt_false(b"") == 0xFFFF                   # init, no final xor


@given(st.binary(max_size=300))
def test_crc_matches_binascii(data):
    assert fr.crc16_ccitt_false(data) == binascii.crc_hqx(data, 0xFFFF)


# (operation, request args, seq, exact request bytes, reply bytes, expected typed reply)
TABLE = [
    ("identify", {}, 1, framed("!1;IDN"),
     framed("#1;OK;ROWS=16;COLS=16;BITS=1;AMPS=1;ASC=N;ORD=R;BO=M;DX=26.4;DY=26.4;FW=1.0.0;SN=SIM-0001"),
     dict(ROWS=16, COLS=16, BITS=1, AMPS=1, ASC="N", ORD="R", BO="M", DX=26.4, DY=26.4, FW="1.0.0", SN="SIM-0001")),
    ("set_phase", {"P": "A5F0"}, 12, framed("!12;SETP;P=A5F0"), framed("#12;OK"), {}),
    ("set_amp", {"A": "1B"}, 13, framed("!13;SETA;A=1B"), framed("#13;OK"), {}),
    ("apply", {}, 14, framed("!14;APPLY"), framed("#14;OK;K=7"), {"K": 7}),
    ("read_back", {}, 65535, framed("!65535;GET"), framed("#65535;OK;P=A5F0;A=;K=7;B=0"),
     {"P": "A5F0", "A": "", "K": 7, "B": 0}),
    ("health", {}, 0, framed("!0;HLTH"), framed("#0;OK;V=5.02;T=31.5;UP=12.25;B=1;CE=3"),
     {"V": 5.02, "T": 31.5, "UP": 12.25, "B": 1, "CE": 3}),
    ("reset", {}, 9, framed("!9;RST"), framed("#9;OK"), {}),
]


@pytest.mark.parametrize("op,args,seq,req_bytes,rep_bytes,expected", TABLE, ids=[t[0] for t in TABLE])
def test_exact_bytes(op, args, seq, req_bytes, rep_bytes, expected):
    assert fr.encode_request(op, seq, **args) == req_bytes
    req = fr.decode(req_bytes)
    assert isinstance(req, fr.Request) and req.seq == seq
    assert fr.parse_request(req) == (op, args)
    rep = fr.decode(rep_bytes)
    assert isinstance(rep, fr.Reply) and rep.ok and rep.seq == seq
    assert fr.parse_reply(op, rep) == expected
    # the device side encodes the same reply bytes from the typed values
    assert fr.encode_reply(op, seq, **expected) == rep_bytes


@pytest.mark.parametrize("seq,code,msg,expected", [
    (None, 1, "CRC", framed("#-;ER;E=1;M=CRC")),
    (5, 3, "P_LENGTH", framed("#5;ER;E=3;M=P_LENGTH")),
    (6, 2, "", framed("#6;ER;E=2")),
])
def test_error_replies(seq, code, msg, expected):
    assert fr.encode_error(seq, code, msg) == expected
    rep = fr.decode(expected)
    assert not rep.ok and rep.code == code and rep.seq == seq


def test_events():
    assert fr.encode_event("BOOT", FW="1.0.0", SN="SIM-0001", B=2) == framed("@BOOT;FW=1.0.0;SN=SIM-0001;B=2")
    assert fr.encode_event("READY") == framed("@READY")
    ev = fr.decode(framed("@BOOT;FW=1.0.0;SN=X;B=2"))
    assert isinstance(ev, fr.Event) and fr.parse_event(ev) == {"FW": "1.0.0", "SN": "X", "B": 2}


@pytest.mark.parametrize("line,code", [
    (b"!12;SETP;P=A5F0*0000\n", 1),                       # wrong CRC
    (framed("!12;SETP;P=A5F0")[:-6] + b"*c19d\n", 1),      # lower-case CRC digits
    (framed("!012;GET"), 2),                               # leading zero in seq
    (framed("!65536;GET"), 2),                             # seq out of range
    (framed("!1;get"), 2),                                 # lower-case command
    (framed("!1;GET;P"), 2),                               # field without '='
    (framed("!1;SETP;P=1;P=2"), 2),                        # duplicate field
    (framed("#1;MAYBE"), 2),                               # bad status
    (framed("#1;ER"), 2),                                  # error reply without code
    (b"hello\n", 2), (b"", 2), (b"!*FFFF", 2),
])
def test_malformed_frames_rejected(line, code):
    with pytest.raises(fr.FrameError) as ei:
        fr.decode(line)
    assert ei.value.code == code
    assert isinstance(ei.value, RisProtocolError)


@pytest.mark.parametrize("line,code", [
    (framed("!3;NOPE"), 2),                     # unknown command
    (framed("!3;SETP"), 2),                     # missing field
    (framed("!3;SETP;P=xyz"), 3),               # bad value (not upper-case hex)
    (framed("!3;GET;X=1"), 2),                  # unexpected field
])
def test_request_semantics_rejected(line, code):
    req = fr.decode(line)
    with pytest.raises(fr.FrameError) as ei:
        fr.parse_request(req)
    assert ei.value.code == code and ei.value.seq == 3


def test_reply_field_mismatch_rejected():
    with pytest.raises(fr.FrameError):
        fr.parse_reply("apply", fr.decode(framed("#1;OK")))               # K missing
    with pytest.raises(fr.FrameError):
        fr.parse_reply("apply", fr.decode(framed("#1;OK;K=x")))           # K not an integer


def test_encode_rejects_bad_arguments():
    with pytest.raises(ValueError, match="seq"):
        fr.encode_request("apply", 70000)
    with pytest.raises(ValueError, match="fields"):
        fr.encode_request("set_phase", 1)
    with pytest.raises(ValueError, match="field P"):
        fr.encode_request("set_phase", 1, P="a5")                          # lower case is not on the wire
    with pytest.raises(ValueError, match="command"):
        fr.encode_request("fly", 1)


def test_protocol_md_examples_are_valid_frames():
    """Every line in PROTOCOL.md that looks like a frame (starts with !, # or @ and ends in *XXXX)
    must decode (CRC correct); lines marked 'corrupted' must not."""
    text = PROTOCOL_MD.read_text()
    found = 0
    for m in re.finditer(r"^([!#@][^\s`]*\*[0-9A-F]{4})(\s.*)?$", text, re.M):
        line, rest = m.group(1), m.group(2) or ""
        found += 1
        if "corrupted" in rest:
            with pytest.raises(fr.FrameError):
                fr.decode(line.encode())
        else:
            assert fr.decode(line.encode()) is not None, line
    assert found >= 10


# ---------------------------------------------------------------------------------------------------
# properties: arbitrary bytes never crash or hang the parser; malformed frames are always rejected
# ---------------------------------------------------------------------------------------------------
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_decode_arbitrary_bytes(data):
    try:
        f = fr.decode(data)
    except fr.FrameError:
        return
    # accepted only if it is a well-formed frame whose CRC checks (independently)
    line = data[:-1] if data.endswith(b"\n") else data
    assert line[:1] in (b"!", b"#", b"@") and line[-5:-4] == b"*"
    assert binascii.crc_hqx(line[:-5], 0xFFFF) == int(line[-4:], 16)
    assert isinstance(f, (fr.Request, fr.Reply, fr.Event))


_valid = st.sampled_from([t[3] for t in TABLE] + [t[4] for t in TABLE])


@settings(max_examples=400, deadline=None)
@given(_valid, st.integers(0, 10_000), st.integers(1, 255))
def test_single_byte_corruption_always_rejected(frame, pos, flip):
    """CRC-16 detects every error burst of <= 16 bits, so one flipped byte is always caught."""
    body = bytearray(frame[:-1])
    i = pos % len(body)
    body[i] ^= flip
    with pytest.raises(fr.FrameError):
        fr.decode(bytes(body))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=30), st.integers(8, 64))
def test_line_splitter_bounded(chunks, max_line):
    sp = fr.LineSplitter(max_line)
    whole = b"".join(chunks)
    lines = []
    for c in chunks:
        lines += sp.feed(c)
        assert len(sp._buf) <= max_line
    # every returned line is a LF-separated piece of the input no longer than max_line
    pieces = [p.rstrip(b"\r") for p in whole.split(b"\n")[:-1]]
    assert all(len(x) <= max_line for x in lines)
    assert lines == [p for p, raw in zip(pieces, whole.split(b"\n")[:-1]) if len(raw) <= max_line]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_osris_parsers_never_crash(data):
    hx = fr.osris_parse_pattern(data)
    assert hx is None or re.fullmatch(r"[0-9A-F]+", hx)
    v = fr.osris_parse_vext(data)
    assert v is None or 0 <= v < 100


def test_osris_frames():
    assert fr.osris_set_frame("a5" * 32) == b"!0x" + b"A5" * 32 + b"\n"
    assert fr.osris_parse_pattern(b"#0X" + b"A5" * 32 + b"\n") == "A5" * 32
    assert fr.osris_parse_pattern(b"#OK") is None
    assert fr.osris_parse_vext(b"#05.02 V\n") == 5.02
    with pytest.raises(ValueError):
        fr.osris_set_frame("abc")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=8), st.sampled_from(["ris1", "osris"]))
def test_firmware_model_on_arbitrary_input(chunks, protocol):
    """Arbitrary host bytes never crash the device model; a ris1 device only ever answers with
    valid frames (mostly E=1/E=2 error replies); the OpenSourceRIS model stays silent on junk."""
    from ris_driver import BoardSpec
    from ris_driver.firmware import SimulatedBoard
    board = BoardSpec.open_source_ris() if protocol == "osris" else BoardSpec(rows=2, cols=4)
    sb = SimulatedBoard(board, protocol)
    for c in chunks:
        sb.receive(c, now=0.0)
    out = sb.poll_output(now=1.0)
    for line in fr.LineSplitter().feed(out):
        if protocol == "ris1":
            assert isinstance(fr.decode(line), fr.Reply)
        else:      # only the firmware's own replies and boot banner lines can ever appear
            banner = (b"", b"Open Source RIS", b"Firmware version: 1.0.0", b"Serial no.: SIM-0001",
                      b"Row count: 16", b"Column count: 16", b"#READY!")
            assert line in (b"#OK", b"#05.02 V") + banner or re.fullmatch(rb"#0X[0-9A-F]{64}", line)


def test_ris_driver_imports_neither_gnuradio_nor_isac_opt_numerics():
    """ris_driver stands alone: no GNU Radio, and of isac_opt only the dependency-free error root."""
    import subprocess
    import sys
    code = ("import sys, importlib, pkgutil\n"
            "sys.modules['gnuradio'] = None\n"
            "import ris_driver\n"
            "for m in pkgutil.walk_packages(ris_driver.__path__, 'ris_driver.'):\n"
            "    if not m.name.endswith('__main__'): importlib.import_module(m.name)\n"
            "extra = sorted(m for m in sys.modules if m.startswith('isac_opt') and m not in ('isac_opt', 'isac_opt.errors'))\n"
            "assert not extra, extra\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       cwd=str(PROTOCOL_MD.parents[1]))
    assert r.returncode == 0, r.stderr[-2000:]


def _section4_blocks():
    text = PROTOCOL_MD.read_text()
    sec = text[text.index("## 4."):text.index("## 5.")]
    blocks = re.findall(r"```\n(.*?)```", sec, re.S)
    out = []
    for b in blocks:
        frames = [ln.split()[0].encode() for ln in b.splitlines() if ln[:1] in ("!", "#")]
        if any(b"corrupted" in ln.encode() for ln in b.splitlines()):
            continue
        out.append(list(zip(frames[0::2], frames[1::2])))
    return out


def test_device_model_reproduces_protocol_md_session_byte_for_byte():
    """The simulator answers the documented requests with exactly the documented reply bytes."""
    from ris_driver import BoardSpec
    from ris_driver.firmware import SimulatedBoard
    plain, amp = _section4_blocks()
    boards = [(BoardSpec(rows=8, cols=8, bits=1), plain),
              (BoardSpec(rows=2, cols=2, bits=2, amp_states=("a0", "a1", "a2", "a3"), amp_scope="element"), amp)]
    for board, pairs in boards:
        sb = SimulatedBoard(board, "ris1")
        t = sb.t_boot + 12.25                         # HLTH reports UP=12.25
        if board.amp_len:
            sb.receive(fr.encode_request("apply", 8), now=t)   # one earlier commit: the example shows K=2
            sb.poll_output(now=t)
        assert len(pairs) >= 4
        for req, rep in pairs:
            sb.receive(req + b"\n", now=t)
            assert sb.poll_output(now=t) == rep + b"\n", req
