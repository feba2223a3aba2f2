"""Front ends against the REAL libiio XML contexts of a stock Pluto (1R1T) and an FMComms2/3 (AD9361 2R2T).

The contexts are the boards' own ``iio_info -x`` dumps (``pluto.xml``: stock ADALM-PLUTO, AD9363, 1R1T;
``fmcomms2-3.xml`` or libiio's name ``fmcomms2.xml``: AD-FMCOMMS2/3, AD9361 2R2T). They are NOT in this
repository: the public ones are libiio's GPL-2.0+ test data (``tests/resources/xmls``) or pyadi-iio's
(licence tied to Analog Devices components), and this project is MIT. ``make iio-contexts`` downloads
libiio's, pinned by commit and sha256, into ``~/.cache/ris-isac-testbed/iio``, which these tests use by
default; ``IIO_XML_DIR`` points them elsewhere (e.g. at ``iio_info -u ip:192.168.2.1 -x > pluto.xml`` of
your own board). Without either they skip. They are loaded through libiio's own XML backend (``xml:<path>``), so pyadi-iio and gr-iio resolve devices, channels and
attributes exactly as on the board. The XML backend cannot write: every attribute write is diverted
into a shadow store here (the lookup of the channel and attribute, which is what fails on the wrong
board, still runs in libiio). Each written attribute is then checked, independently of libiio, against
the XML file parsed with ElementTree.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

iio = pytest.importorskip("iio")
adi = pytest.importorskip("adi")

_CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ris-isac-testbed" / "iio"
DATA = Path(os.environ.get("IIO_XML_DIR") or _CACHE)
PLUTO = DATA / "pluto.xml"
FMC = next((p for p in (DATA / "fmcomms2-3.xml", DATA / "fmcomms2.xml") if p.is_file()), DATA / "fmcomms2-3.xml")
if not (PLUTO.is_file() and FMC.is_file()):
    pytest.skip(f"real libiio contexts not available in {DATA}: run `make iio-contexts` (network) or set "
                "IIO_XML_DIR to a folder with pluto.xml and fmcomms2-3.xml (iio_info -x dumps)",
                allow_module_level=True)


def _xml_attrs(path: Path) -> dict:
    """{device name: {(channel id, 'output'|'input'): set(attribute names and sysfs filenames)}, ...}"""
    out = {}
    for d in ET.parse(path).getroot().iter("device"):
        chans = {}
        for c in d.iter("channel"):
            names = set()
            for a in c.iter("attribute"):
                names.add(a.get("name"))
                if a.get("filename"):
                    names.add(a.get("filename"))
            chans[(c.get("id"), c.get("type"))] = names
        chans[("", "device")] = {a.get("name") for a in d.findall("attribute")}
        out[d.get("name")] = chans
    return out


def _xml_values() -> dict:
    """Attribute values recorded in both XML dumps (libiio 0.24's XML backend does not serve them):
    {sysfs filename or 'dev:NAME': value}, the ad9361-phy's winning over the other devices'."""
    vals = {}
    for path in (PLUTO, FMC):
        for d in ET.parse(path).getroot().iter("device"):
            for c in d.iter("channel"):
                for a in c.iter("attribute"):
                    if a.get("value") is not None and (d.get("name") == "ad9361-phy" or a.get("filename") not in vals):
                        vals[a.get("filename") or a.get("name")] = a.get("value")
            for a in d.findall("attribute"):
                if a.get("value") is not None:
                    vals["dev:" + a.get("name")] = a.get("value")
    return vals


@pytest.fixture
def shadow(monkeypatch):
    """Divert libiio attribute writes into a dict keyed by sysfs filename; reads see the written value, else
    the value in the XML dump. The channel/attribute lookups stay libiio's."""
    store: dict[str, str] = {}
    recorded = _xml_values()

    def c_write(self, value):
        store[self.filename] = str(value)

    def c_read(self):
        return store.get(self.filename, recorded.get(self.filename, "0"))

    def d_write(self, value):
        store["dev:" + self.name] = str(value)

    def d_read(self):
        return store.get("dev:" + self.name, recorded.get("dev:" + self.name, "0"))

    monkeypatch.setattr(iio.ChannelAttr, "_write", c_write)
    monkeypatch.setattr(iio.ChannelAttr, "_read", c_read)
    for cls in (iio.DeviceAttr, iio.DeviceDebugAttr, iio.DeviceBufferAttr):
        monkeypatch.setattr(cls, "_write", d_write)
    monkeypatch.setattr(iio.DeviceAttr, "_read", d_read)
    return store


def test_xml_contexts_are_the_boards_we_think():
    """Independent of the code under test: the stock Pluto has one RX/TX chain, the FMComms2/3 two."""
    p, f = _xml_attrs(PLUTO), _xml_attrs(FMC)
    assert ("voltage1", "input") not in p["ad9361-phy"] and ("voltage1", "output") not in p["ad9361-phy"]
    assert ("voltage1", "input") in f["ad9361-phy"] and ("voltage1", "output") in f["ad9361-phy"]


def test_stock_pluto_1r1t_sets_up_and_writes_no_chan1(shadow):
    """Defect: PlutoFrontEnd always wrote *_chan1, so a stock Pluto failed with 'NoneType ... attrs'."""
    from calibration.frontend import PlutoFrontEnd
    fe = PlutoFrontEnd(f"xml:{PLUTO}", lo_hz=2.4e9, fs_hz=2e6, n_tx=1, n_rx=1, rx_gain_db=20.0, tx_atten_db=-5.0)
    assert shadow, "nothing was written"
    assert not [k for k in shadow if "_voltage1_" in k], shadow
    phy = _xml_attrs(PLUTO)["ad9361-phy"]
    allowed = set().union(*phy.values())
    for k in shadow:
        if not k.startswith("dev:"):
            assert k in allowed, f"{k} is not an attribute of the stock Pluto's ad9361-phy"
    assert float(shadow["in_voltage0_hardwaregain"]) == 20.0
    assert float(shadow["out_voltage0_hardwaregain"]) == -5.0
    assert shadow["in_voltage0_gain_control_mode"] == "manual"
    assert int(shadow["out_altvoltage0_RX_LO_frequency"]) == 2400000000
    assert int(shadow["out_altvoltage1_TX_LO_frequency"]) == 2400000000
    assert fe.gains_db() == [20.0, -5.0]


def test_stock_pluto_asked_for_2r2t_is_one_clear_line(shadow):
    from calibration.errors import HardwareUnavailable
    from calibration.frontend import PlutoFrontEnd
    with pytest.raises(HardwareUnavailable) as ei:
        PlutoFrontEnd(f"xml:{PLUTO}", lo_hz=2.4e9, fs_hz=2e6, n_tx=2, n_rx=2)
    msg = str(ei.value)
    assert "1 RX / 1 TX" in msg and "2r2t" in msg and "\n" not in msg
    assert not shadow, "nothing may be written before the channel count is checked"


def test_ad9361_2r2t_writes_both_chains(shadow):
    from calibration.frontend import PlutoFrontEnd
    fe = PlutoFrontEnd(f"xml:{FMC}", lo_hz=5.8e9, fs_hz=4e6, n_tx=2, n_rx=2, rx_gain_db=12.0, tx_atten_db=-3.0)
    phy = _xml_attrs(FMC)["ad9361-phy"]
    allowed = set().union(*phy.values())
    for k in shadow:
        if not k.startswith("dev:"):
            assert k in allowed, k
    for ch in (0, 1):
        assert float(shadow[f"in_voltage{ch}_hardwaregain"]) == 12.0
        assert shadow[f"in_voltage{ch}_gain_control_mode"] == "manual"
        assert float(shadow[f"out_voltage{ch}_hardwaregain"]) == -3.0
    assert fe.sdr.rx_enabled_channels == [0, 1] and fe.sdr.tx_enabled_channels == [0, 1]


def test_ad9361_1r1t_subset_leaves_chain_2_alone(shadow):
    from calibration.frontend import PlutoFrontEnd
    PlutoFrontEnd(f"xml:{FMC}", lo_hz=5.8e9, fs_hz=4e6, n_tx=1, n_rx=1)
    assert not [k for k in shadow if "_voltage1_" in k]


# ---- gr-iio (the GRC front end's hardware path) ------------------------------------------------------------
def _gr_iio():
    try:
        from gnuradio import iio as gr_iio
    except Exception:  # noqa: BLE001
        pytest.skip("gr-iio not importable")
    return gr_iio


@pytest.mark.parametrize("ctx, M, ok", [(PLUTO, 1, True), (PLUTO, 2, False), (FMC, 1, True), (FMC, 2, True)])
def test_gr_iio_channel_enables_fit_the_real_context(ctx, M, ok):
    """gr-iio's fmcomms2 blocks enable voltage0..3 of cf-ad9361-lpc (RX) and cf-ad9361-dds-core-lpc (TX) by
    mask; a masked-in channel the board lacks is 'Channel not found' at construction. The mask the front end
    builds for M chains must only name scan channels the context has (a stock Pluto has voltage0/1 only).
    (gr-iio's constructors themselves cannot be run on an XML context: libiio's XML backend cannot create
    buffers and the blocks hang or crash on it, so the names are checked here.)"""
    from blocks.frontend import iio_channel_mask
    mask = iio_channel_mask(M)
    assert mask == [True, True] + [M > 1] * 2
    dev = _xml_attrs(ctx)
    fits = all((f"voltage{i}", "input") in dev["cf-ad9361-lpc"] and (f"voltage{i}", "output") in
               dev["cf-ad9361-dds-core-lpc"] for i, on in enumerate(mask) if on)
    assert fits == ok


class _Rec:
    """Stands in for a gr-iio block: records the set_* calls the front end makes, in order."""

    def __init__(self, *a):
        self.args, self.calls = a, []

    def __getattr__(self, name):
        if not name.startswith("set_"):
            raise AttributeError(name)
        return lambda *a: self.calls.append((name,) + a)


# gr-iio 3.10 fmcomms2 source/sink: which ad9361-phy attribute each setter writes (gr-iio's fmcomms2_*_impl.cc)
_GR_IIO_ATTR = {
    ("source", "set_frequency"): lambda a: ["out_altvoltage0_RX_LO_frequency"],
    ("source", "set_samplerate"): lambda a: ["in_voltage_sampling_frequency"],
    ("source", "set_gain_mode"): lambda a: [f"in_voltage{a[0]}_gain_control_mode"],
    ("source", "set_gain"): lambda a: [f"in_voltage{a[0]}_hardwaregain"],
    ("source", "set_quadrature"): lambda a: ["in_voltage_quadrature_tracking_en"],
    ("source", "set_rfdc"): lambda a: ["in_voltage_rf_dc_offset_tracking_en"],
    ("source", "set_bbdc"): lambda a: ["in_voltage_bb_dc_offset_tracking_en"],
    ("source", "set_filter_params"): lambda a: ["in_voltage_rf_bandwidth"] if a[0] == "Auto" else [],
    ("source", "set_len_tag_key"): lambda a: [],
    ("sink", "set_frequency"): lambda a: ["out_altvoltage1_TX_LO_frequency"],
    ("sink", "set_samplerate"): lambda a: ["out_voltage_sampling_frequency"],
    ("sink", "set_attenuation"): lambda a: [f"out_voltage{a[0]}_hardwaregain"],
    ("sink", "set_bandwidth"): lambda a: ["out_voltage_rf_bandwidth"],
    ("sink", "set_filter_params"): lambda a: [],
    ("sink", "set_len_tag_key"): lambda a: [],
}


@pytest.mark.gnuradio
@pytest.mark.parametrize("ctx, M", [(PLUTO, 1), (FMC, 2)])
def test_gr_iio_setters_like_the_grc_template(monkeypatch, ctx, M):
    """The front end calls what GNU Radio's own fmcomms2 templates call (set_len_tag_key, set_filter_params,
    per-chain gain/attenuation for the chains in use only), and every attribute those setters write exists
    on the board's ad9361-phy."""
    gr_iio = _gr_iio()
    made = {}

    def mk(kind):
        def f(*a):
            made[kind] = _Rec(*a)
            return made[kind]
        return f

    monkeypatch.setattr(gr_iio, "fmcomms2_source_fc32", mk("source"))
    monkeypatch.setattr(gr_iio, "fmcomms2_sink_fc32", mk("sink"))
    from blocks.frontend import configure_iio
    configure_iio(gr_iio, f"xml:{ctx}", M, fs=2e6, fc=2.4e9, txg=-10.0, rxg=30.0)
    allowed = set().union(*_xml_attrs(ctx)["ad9361-phy"].values())
    for kind in ("source", "sink"):
        names = [c[0] for c in made[kind].calls]
        assert "set_len_tag_key" in names and "set_filter_params" in names, (kind, names)
        assert names.index("set_filter_params") > names.index("set_samplerate")
        for call in made[kind].calls:
            for attr in _GR_IIO_ATTR[(kind, call[0])](call[1:]):
                assert attr in allowed, f"{kind}.{call[0]}{call[1:]} writes {attr}, absent on {ctx.name}"
    chans = {c[1] for c in made["source"].calls if c[0] in ("set_gain", "set_gain_mode")}
    assert chans == set(range(M))
    assert {c[1] for c in made["sink"].calls if c[0] == "set_attenuation"} == set(range(M))
    assert made["source"].args[1] == [True, True] + [M > 1] * 2
