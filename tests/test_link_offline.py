"""Offline mode of the live link: ``isac-testbed encode`` / ``decode`` (issue 13 item 4).

encode → simulated capture → decode returns the payload byte for byte (receivers that never see the symbols);
an interrupted encode resumed gives the identical files; the recordings validate with the ``sigmf`` package
and their samples and metadata agree with independent recomputations; bad input is one line, exit 2.
"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

sigmf = pytest.importorskip("sigmf")

from isac_opt.link.offline import EncodeSettings  # noqa: E402
from isac_opt.paper_a.scenario import ScenarioA  # noqa: E402

SETTINGS = EncodeSettings(chunk=16, batch=16, layers=1, dtype="float32", threads=1)
N_BYTES = 150


def _payloads(K, seed=0):
    return [np.random.default_rng([seed, 7, k]).bytes(N_BYTES) for k in range(K)]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from isac_testbed.offline import encode, simulate_capture_file
    d = tmp_path_factory.mktemp("offline")
    scn = ScenarioA()
    pay = _payloads(scn.K)
    summ = encode(scn, pay, d / "tx", seed=0, settings=SETTINGS, rate=2e5, frequency=2.4e9, payload_kind="random")
    # high SNR (user noise 10 dB below the scenario's): the designs sit on the CI boundary, where the
    # scenario's own noise gives a QPSK SER ~1e-4 (a lost packet in ~10 % of such small runs)
    cap = simulate_capture_file(d / "tx.sigmf-meta", d / "cap", seed=4, user_noise_db=-10.0)
    return d, scn, pay, summ, cap


def test_encode_capture_decode_returns_the_payload_byte_for_byte(run, tmp_path, capsys):
    from isac_testbed.cli import main
    d, scn, pay, summ, cap = run
    assert summ["ci_frames_ok"] == 1.0 and summ["chunks_loaded"] == 0 and summ["chunks_designed"] >= 3
    rx = tmp_path / "rx"
    rc = main(["decode", str(d / "cap"), "--reference", "random", "--received", str(rx), "--json",
               "--png", str(tmp_path / "r.png")])
    rep = json.loads(capsys.readouterr().out)
    assert rc == 0
    for k in range(scn.K):
        assert (rx / f"user{k}.bin").read_bytes() == pay[k]
    assert rep["payload_match"] is True and rep["per"] == [0.0] * scn.K and rep["ber"] == [0.0] * scn.K
    assert rep["ci_frames_ok"] == 1.0 and rep["ci_frames_ok_engine"] == 1.0
    assert rep["frames"] == summ["frames"] and (tmp_path / "r.png").stat().st_size > 20_000
    # without the reference the receivers still deliver the same bytes (they never use the symbols)
    from isac_testbed.offline import decode
    rep2, _, got = decode(d / "cap")
    assert got == pay and "ber" not in rep2


def test_recordings_validate_with_sigmf_and_agree_with_recomputation(run):
    """The sigmf package reads and validates both files; the samples are the designed waveforms (frame
    layout, little-endian bytes, constant modulus); per-frame annotations hold the SINR that paper A's
    per-design MVDR computes from those samples; global metadata names scenario, seed and payload hashes."""
    import hashlib
    from sigmf import sigmffile
    from isac_opt.link.offline import link_state, payload_digest
    from isac_opt.paper_a.radar import echo, mvdr_filter, sinr_mvdr
    from isac_opt.link.offline import frame_mvdr
    d, scn, pay, summ, cap = run
    s = sigmffile.fromfile(str(d / "tx"))
    s.validate()
    g = s.get_global_info()
    F, Fs = summ["frames"], summ["frame_len"]
    assert g["core:datatype"] == "cf32_le" and g["core:num_channels"] == scn.M and g["core:sample_rate"] == 2e5
    assert s.get_captures()[0]["core:frequency"] == 2.4e9
    assert g["isac:scenario"] == scn.to_dict() and g["isac:seed"] == 0
    assert g["isac:payload_sha256"] == [hashlib.sha256(p).hexdigest() for p in pay]
    assert g["isac:payload_digest"] == payload_digest(pay)
    x = s.read_samples()
    assert x.shape == (F * Fs, scn.M)
    raw = np.fromfile(d / "tx.sigmf-data", dtype="<c8").reshape(-1, scn.M)
    np.testing.assert_array_equal(raw, x)
    fr = raw.reshape(F, Fs, scn.M)
    assert np.all(fr[:, scn.L:, :] == 0)                                  # guard zeros
    np.testing.assert_allclose(np.abs(fr[:, :scn.L, :]), scn.amp, rtol=1e-6)  # constant modulus
    ann = s.get_annotations()
    assert len(ann) == F
    ch, phi = link_state(scn, 0)
    X = np.transpose(fr[:, :scn.L, :].astype(np.complex128), (0, 2, 1))
    for f in (0, 1, F - 1):
        a = ann[f]
        assert a["core:sample_start"] == f * Fs and a["core:sample_count"] == Fs and a["isac:frame_id"] == f
        e = echo(scn, ch, X[f], phi)
        assert 10 * np.log10(sinr_mvdr(e)) == pytest.approx(a["isac:sinr_db"], abs=1e-4)
        w, sinr = frame_mvdr(scn, ch, phi, X[f:f + 1])
        np.testing.assert_allclose(w[0], mvdr_filter(e), rtol=1e-6, atol=1e-12 * np.abs(w).max())
        assert sinr[0] == pytest.approx(sinr_mvdr(e), rel=1e-9)
    for name, n in (("users", scn.K), ("radar", scn.M)):
        c = sigmffile.fromfile(str(d / "cap" / name))
        c.validate()
        cg = c.get_global_info()
        assert cg["isac:tx_key"] == g["isac:key"] and cg["core:num_channels"] == n
        assert [a["isac:target_present"] for a in c.get_annotations()] == [f % 2 == 0 for f in range(F)]
        assert c.read_samples().shape == (F * Fs, n)


def test_interrupted_encode_resumes_to_identical_files(run, tmp_path):
    from isac_testbed.offline import encode
    d, scn, pay, summ, cap = run
    seen = []

    def stop_after_two(done, n):
        seen.append(done)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode(scn, pay, tmp_path / "tx", seed=0, settings=SETTINGS, rate=2e5, frequency=2.4e9,
               payload_kind="random", progress=stop_after_two)
    assert not (tmp_path / "tx.sigmf-data").exists() and not (tmp_path / "tx.sigmf-meta").exists()
    parts = list((tmp_path / "tx.partial").glob("*/chunk_*.npz"))
    assert len(parts) == 2
    warnings = []
    r = encode(scn, pay, tmp_path / "tx", seed=0, settings=SETTINGS, rate=2e5, frequency=2.4e9,
               payload_kind="random", warn=warnings.append)
    assert r["chunks_loaded"] == 2 and r["chunks_designed"] == summ["chunks_designed"] - 2 and not warnings
    for ext in (".sigmf-data", ".sigmf-meta", ".design.npz"):
        if ext == ".design.npz":
            continue                    # holds a creation time; its arrays are checked below
        assert (tmp_path / f"tx{ext}").read_bytes() == (d / f"tx{ext}").read_bytes(), ext
    with np.load(tmp_path / "tx.design.npz") as a, np.load(d / "tx.design.npz") as b:
        for k in ("X", "phi", "w"):
            np.testing.assert_array_equal(a[k], b[k])
    assert not (tmp_path / "tx.partial").exists()                        # cleaned up after success


def test_resume_store_never_mixes_runs(run, tmp_path):
    """A chunk from another key (other seed / payload / settings) or an altered one is not used."""
    from isac_opt.link.offline import DesignChunks, design_frames, encode_key, link_state, plan_symbols
    d, scn, pay, summ, cap = run
    k1 = encode_key(scn, 0, pay, SETTINGS, software={"v": 1})
    k2 = encode_key(scn, 1, pay, SETTINGS, software={"v": 1})
    k3 = encode_key(scn, 0, pay[:2] + [pay[2][:-1] + b"x"], SETTINGS, software={"v": 1})
    k4 = encode_key(scn, 0, pay, EncodeSettings(chunk=16, batch=16, layers=2, threads=1), software={"v": 1})
    sym, _ = plan_symbols(scn, pay, SETTINGS.chunk)
    k5 = encode_key(scn, 0, pay, SETTINGS, symbols=sym, software={"v": 1})
    k6 = encode_key(scn, 0, pay, SETTINGS, symbols=plan_symbols(scn, pay, SETTINGS.chunk, sym.shape[0] + 1)[0],
                    software={"v": 1})                                # --frames is part of the key
    from isac_opt.link.offline import key_digest
    assert len({key_digest(k) for k in (k1, k2, k3, k4, k5, k6)}) == 6
    sym = sym[:20]
    ch, phi = link_state(scn, 0)
    warn = []
    s1 = DesignChunks(tmp_path / "a", k1, warn=warn.append)
    ref = design_frames(scn, ch, phi, sym, SETTINGS, s1)
    s2 = DesignChunks(tmp_path / "b", k2, warn=warn.append)
    s2.prepare()
    shutil.copy(s1.path(0), s2.path(0))                                  # a chunk of another run
    with np.load(s1.path(1)) as z:                                       # an altered chunk
        arrs = {k: z[k] for k in z.files}
    arrs["X"] = arrs["X"] * 1j
    np.savez(s1.path(1), **arrs)
    assert s2.load(0, 16, scn.M, scn.L) is None and "another encode run" in warn[-1]
    assert s1.load(1, sym.shape[0] - 16, scn.M, scn.L) is None and "checksum" in warn[-1]
    (s1.path(0)).write_bytes(b"not a zip")
    assert s1.load(0, 16, scn.M, scn.L) is None and "unreadable" in warn[-1]
    again = design_frames(scn, ch, phi, sym, SETTINGS, s1)
    assert again.chunks_loaded == 0 and again.chunks_designed == 2
    np.testing.assert_array_equal(again.X, ref.X)


def _err(capsys, rc, cmd, *needles):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"isac-testbed {cmd}: error:"), err
    for n in needles:
        assert n in err[0], (n, err[0])


def test_bad_input_one_line_exit_2(run, tmp_path, capsys):
    from isac_testbed.cli import main
    d, scn, pay, summ, cap = run
    # existing outputs without --force (checked before any design)
    rc = main(["encode", "--out", str(d / "tx"), "--bytes", "10"])
    _err(capsys, rc, "encode", "--out", "tx.sigmf-data", "--force")
    rc = main(["encode", "--out", str(tmp_path / "n"), "--payload", str(tmp_path / "missing.bin")])
    _err(capsys, rc, "encode", "--payload", "no such file")
    rc = main(["encode", "--out", str(tmp_path / "n"), "--batch", "0"])
    _err(capsys, rc, "encode", "--batch")
    rc = main(["encode", "--out", str(tmp_path / "n"), "--simulate-capture", str(d / "cap"), "--bytes", "10"])
    _err(capsys, rc, "encode", "--simulate-capture", "exists")
    # missing capture / files
    rc = main(["decode", str(tmp_path / "nothing")])
    _err(capsys, rc, "decode", "CAPTURE")
    (tmp_path / "empty").mkdir()
    rc = main(["decode", str(tmp_path / "empty")])
    _err(capsys, rc, "decode", "users.sigmf-meta", "no such")
    # wrong SigMF datatype
    bad = tmp_path / "bad"
    shutil.copytree(d / "cap", bad)
    m = json.loads((bad / "users.sigmf-meta").read_text())
    m["global"]["core:datatype"] = "cf32_be"
    (bad / "users.sigmf-meta").write_text(json.dumps(m))
    rc = main(["decode", str(bad)])
    _err(capsys, rc, "decode", "core:datatype", "cf32_le")
    m["global"]["core:datatype"] = "ci16_le"
    (bad / "users.sigmf-meta").write_text(json.dumps(m))
    rc = main(["decode", str(bad)])
    _err(capsys, rc, "decode", "core:datatype")
    # truncated data
    shutil.rmtree(bad)
    shutil.copytree(d / "cap", bad)
    data = (bad / "users.sigmf-data").read_bytes()
    (bad / "users.sigmf-data").write_bytes(data[:-24])
    rc = main(["decode", str(bad)])
    _err(capsys, rc, "decode", "users.sigmf-data")
    # metadata from another scenario
    other = tmp_path / "other.toml"
    ScenarioA(gamma_db=(12.0, 12.0, 12.0)).save_toml(other)
    rc = main(["decode", str(d / "cap"), "--scenario", str(other)])
    _err(capsys, rc, "decode", "isac:scenario", "gamma_db")
    # a transmit file of another run (different seed) than the capture
    from isac_testbed.offline import encode
    encode(scn, pay, tmp_path / "tx2", seed=1, settings=EncodeSettings(chunk=16, batch=64, layers=0),
           payload_kind="random")
    rc = main(["decode", str(d / "cap"), "--tx", str(tmp_path / "tx2.sigmf-meta")])
    _err(capsys, rc, "decode", "isac:key")
    # a reference that is not the payload the capture carries
    (tmp_path / "p.bin").write_bytes(b"x" * N_BYTES)
    rc = main(["decode", str(d / "cap"), "--reference", str(tmp_path / "p.bin")])
    _err(capsys, rc, "decode", "isac:payload_sha256")
    # --received files that exist
    (tmp_path / "rx").mkdir()
    (tmp_path / "rx" / "user0.bin").write_bytes(b"old")
    rc = main(["decode", str(d / "cap"), "--received", str(tmp_path / "rx")])
    _err(capsys, rc, "decode", "--received", "user0.bin", "--force")
    assert (tmp_path / "rx" / "user0.bin").read_bytes() == b"old"


@pytest.mark.gnuradio
def test_gnuradio_playback_of_the_transmit_file_decodes_byte_for_byte(run, tmp_path):
    """The front ends play the file: stock blocks.file_source → frame_tagger → frontend(sim) → file_sink
    (a real GNU Radio flowgraph), then decode returns every user's payload and the radar agrees."""
    pytest.importorskip("gnuradio")
    from isac_testbed.offline import decode, play_gnuradio
    d, scn, pay, summ, cap = run
    out = play_gnuradio(d / "tx.sigmf-meta", tmp_path / "gr", user_noise_db=-10.0, seed=8)
    assert out["frames"] == summ["frames"]
    rep, arrays, got = decode(tmp_path / "gr", reference="random")
    assert got == pay and rep["payload_match"] and rep["ci_frames_ok"] == 1.0
    # the radar statistic of the GNU Radio capture: H0 frames are Exp(1) (mean 1 within 4 standard errors)
    z0 = arrays["z"][~arrays["present"]]
    assert abs(z0.mean() - 1) < 4 / np.sqrt(z0.size)


def test_link_png_on_the_numpy_loop_output(tmp_path):
    """write_link_png on run_link's report (no per-frame arrays: those panels say so) and with arrays: the
    bars are the report's BER/PER, the CI wedge has its apex at √Γ, the threshold line is at −ln Pfa."""
    import math
    import torch
    from isac_opt.link.loop import run_link
    from isac_opt.link.offline import link_state
    from isac_testbed.link_png import write_link_png
    scn = ScenarioA()
    ch, phi = link_state(scn, 0)
    pay = [np.random.default_rng(k).bytes(120) for k in range(scn.K)]
    res = run_link(scn, ch, phi, pay, engine_kw={"dtype": torch.float32, "layers": 0}, user_noise_db=6.0, seed=2,
                   frames=40)
    rep = dict(res.report, packets=[u["packets"] for u in res.users])
    fig = write_link_png(tmp_path / "a.png", rep, {"symbols_per_user": rep["frames"] * scn.L})
    assert (tmp_path / "a.png").stat().st_size > 10_000
    assert fig._link_panels == {"ber": True, "sinr": True}
    heights = sorted(round(p.get_height(), 12) for p in fig.axes[0].patches)
    want = sorted(round(max(v, 1e-7), 12) for v in rep["ber"] + rep["per"])
    assert heights == want
    rng = np.random.default_rng(0)
    F = 400
    present = np.arange(F) % 2 == 0
    sinr = np.full(F, 50.0)
    z = rng.exponential(1 + sinr * present)
    der = [np.sqrt(10) + 3 + rng.standard_normal(500) + 1j * rng.standard_normal(500) for _ in range(scn.K)]
    rep.update(pfa=1e-2)
    fig = write_link_png(tmp_path / "b.png", rep, {"z": z, "present": present, "sinr_pred": sinr, "derotated": der,
                                                   "gamma_db": [10.0] * scn.K, "psk_order": 4})
    assert set(fig._link_panels) == {"ber", "derotated", "histogram", "sinr"}
    wedge = fig.axes[1].collections[0].get_paths()[0].vertices
    assert wedge[:, 0].min() == pytest.approx(math.sqrt(10))
    xs = [ln.get_xdata()[0] for ln in fig.axes[2].lines if ln.get_linestyle() == "--"]
    assert any(x == pytest.approx(-math.log(1e-2)) for x in xs)
    assert fig.axes[2].get_yscale() == "log"


def test_hardware_scale_file_plays_and_decodes(tmp_path):
    """--backend pluto: constant modulus at 0.5 of DAC full scale (isac:tx_scale recorded); the simulated
    capture divides the scale out and decode (CI of the stored waveforms ÷ scale) delivers the payload."""
    from isac_testbed.offline import decode, encode, simulate_capture_file
    scn = ScenarioA()
    pay = _payloads(scn.K, seed=3)
    s = EncodeSettings(chunk=16, batch=64, layers=0)
    summ = encode(scn, pay, tmp_path / "hw", seed=2, settings=s, backend="pluto", frequency=5.8e9, payload_kind="files")
    meta = json.loads((tmp_path / "hw.sigmf-meta").read_text())
    assert meta["global"]["isac:tx_scale"] == pytest.approx(0.5 / scn.amp)
    x = np.fromfile(tmp_path / "hw.sigmf-data", "<c8").reshape(summ["frames"], summ["frame_len"], scn.M)
    np.testing.assert_allclose(np.abs(x[:, :scn.L, :]), 0.5, rtol=1e-6)
    simulate_capture_file(tmp_path / "hw", tmp_path / "cap", user_noise_db=-10.0, seed=1)
    files = []
    for k, p in enumerate(pay):
        (tmp_path / f"p{k}.bin").write_bytes(p)
        files.append(str(tmp_path / f"p{k}.bin"))
    rep, _, got = decode(tmp_path / "cap", reference=",".join(files))
    assert got == pay and rep["ci_frames_ok"] == 1.0 and rep["payload_match"]
    assert abs(rep["sinr_measured_db"] - rep["sinr_predicted_db"]) < rep["sinr_ci_db"][1] - rep["sinr_ci_db"][0]
