"""Writes grc/flowgraphs/risisac_link_{sim,pluto,usrp}.grc (QPSK; K = 3 users for the paper-A scenario, K = 2 for
the Pluto's bench scenario grc/scenarios/bench_2x2.toml): `python scripts/gen_link_grc.py`."""
import yaml

def blk(name, id_, params, xy):
    return {"name": name, "id": id_, "parameters": params,
            "states": {"coordinate": list(xy), "rotation": 0, "state": "enabled"}}

def param(name, label, short, typ, value, x):
    return blk(name, "parameter", {"label": label, "short_id": short, "type": typ, "value": value, "hide": "none"}, (x, 8))

def make(variant):
    title = {"sim": "RIS-ISAC live link, headless simulation", "pluto": "RIS-ISAC live link on a Pluto (2R2T)",
             "usrp": "RIS-ISAC live link on a USRP"}[variant]
    desc = {"sim": "Live link (issue 13): K = 3 user payloads -> ARQ packets -> CRC -> QPSK -> per-frame SLP designs -> simulated RIS-ISAC channel -> per-frame STAP + receivers -> CRC check -> bytes",
            "pluto": "Live link (issue 13) on a 2R2T Pluto / FMComms2 (bench scenario: M = 2, K = 2 users fed from RX chain 0): hardware, compile-only in tests",
            "usrp": "Live link (issue 13) on one or several USRPs: hardware, compile-only in tests"}[variant]
    fid = {"sim": "risisac_link_sim", "pluto": "risisac_link_pluto", "usrp": "risisac_link_usrp"}[variant]
    M = {"sim": "6", "pluto": "2", "usrp": "6"}[variant]
    nK = 2 if variant == "pluto" else 3
    blocks = [
        param("design", "Link state (any paper-A design file)", "d", "str", "design.npz", 200),
        param("payload", "Payload (random, FILE or FILE,FILE,FILE)", "p", "str", "random", 320),
        param("nbytes", "Random bytes per user", "b", "intx", "2000", 440),
        param("seed", "Seed", "s", "intx", "0", 560),
        param("layers", "Polish layers (0 = lookup)", "l", "intx", "0", 680),
        param("received", "Write user<k>.bin into DIR ('' = no)", "r", "str", "", 800),
        blk("M", "variable", {"value": M}, (920, 8)),
        blk("K", "variable", {"value": str(nK)}, (1000, 8)),
        blk("src", "risisac_link_source", {"design": "design", "payload": "payload", "nbytes": "nbytes", "seed": "seed",
            "chunk": "64", "window": "4096", "arq": "True", "inflight": "16", "min_frames": "0", "max_frames": "0",
            "batch": "64"}, (8, 120)),
        blk("crc_append", "digital_crc_append", {"num_bits": "32", "poly": "0x4C11DB7", "initial_value": "0xFFFFFFFF",
            "final_xor": "0xFFFFFFFF", "input_reflected": "True", "result_reflected": "True", "swap_endianness": "False",
            "skip_header_bytes": "0"}, (220, 120)),
    ]
    conns = [["src", "pdus", "crc_append", "in"]]
    for k in range(nK):
        y = 220 + 100 * k
        blocks += [
            blk(f"user{k}", "pdu_pdu_filter", {"k": 'pmt.intern("user")', "v": f"pmt.from_long({k})", "invert": "False"}, (8, y)),
            blk(f"p2s{k}", "pdu_pdu_to_tagged_stream", {"type": "byte", "tag": "packet_len"}, (180, y)),
            blk(f"bits{k}", "blocks_repack_bits_bb", {"k": "8", "l": "2", "len_tag_key": '"packet_len"',
                "align_output": "False", "endianness": "gr.GR_MSB_FIRST"}, (360, y)),
            blk(f"gray{k}", "digital_map_bb", {"map": "[0, 1, 3, 2]"}, (560, y)),
        ]
        conns += [["crc_append", "out", f"user{k}", "pdus"], [f"user{k}", "pdus", f"p2s{k}", "pdus"],
                  [f"p2s{k}", "0", f"bits{k}", "0"], [f"bits{k}", "0", f"gray{k}", "0"], [f"gray{k}", "0", "des", str(k)]]
    hw = variant != "sim"
    blocks += [
        blk("des", "risisac_link_designer", {"design": "design", "K": "K", "M": "M", "layers": "layers", "dtype": "'float32'",
            "device": "cpu", "batch": "64", "depth": "0", "table": "link", "late": "'fill'" if hw else "'wait'",
            "chunk": "64", "backend": {"sim": "'sim'", "pluto": "'pluto'", "usrp": "'uhd'"}[variant], "minoutbuf": "16384"}, (720, 220)),
    ]
    fe = {"design": "design", "M": "M", "K": "K", "seed": "seed", "ris": "'design'", "target_mode": "'alternate'",
          "user_noise_offset_db": "0.0"}
    if variant == "sim":
        fe["backend"] = "'sim'"
    elif variant == "pluto":
        fe.update(backend="'pluto'", uri="'ip:192.168.2.1'", samp_rate="2.5e6", center_freq="5.8e9", rx_delay="0",
                  user_channels="(0, 0)")
    else:
        fe.update(backend="'uhd'", dev_args="'type=b200'", samp_rate="1e6", center_freq="5.8e9", rx_delay="0")
    blocks += [
        blk("fe", "risisac_frontend", fe, (940, 220)),
        blk("det", "risisac_stap_detector", {"M": "M", "pfa": "1e-3", "design": "", "report_every": "1000",
            "publish": "False", "table": "link"}, (1180, 300)),
        blk("rcv", "risisac_link_receiver", {"K": "K", "table": "link"}, (1180, 200)),
        blk("crc_check", "digital_crc_check", {"num_bits": "32", "poly": "0x4C11DB7", "initial_value": "0xFFFFFFFF",
            "final_xor": "0xFFFFFFFF", "input_reflected": "True", "result_reflected": "True", "swap_endianness": "False",
            "discard_crc": "True", "skip_header_bytes": "0"}, (1400, 200)),
        blk("dfr", "risisac_link_deframer", {"K": "K", "table": "link", "received": "received"}, (1620, 200)),
        blk("stat_sink", "blocks_null_sink", {"type": "float", "vlen": "1", "num_inputs": "1"}, (1400, 300)),
        blk("sinr_sink", "blocks_null_sink", {"type": "float", "vlen": "1", "num_inputs": "1"}, (1400, 350)),
        blk("log", "blocks_message_debug", {"en_uvec": "True"}, (1620, 350)),
    ]
    conns += [["des", "credit", "src", "credit"], ["src", "ctrl", "des", "ctrl"], ["des", "0", "fe", "0"],
              ["fe", "0", "rcv", "0"], ["fe", "1", "det", "0"], ["det", "0", "stat_sink", "0"],
              ["det", "1", "sinr_sink", "0"], ["det", "status", "log", "print"], ["des", "errors", "log", "print"],
              ["rcv", "pdus", "crc_check", "in"], ["crc_check", "ok", "dfr", "ok"],
              ["crc_check", "fail", "dfr", "fail"], ["dfr", "feedback", "src", "feedback"]]
    doc = {"options": {"parameters": {"author": "ris-isac-testbed", "category": "[GRC Hier Blocks]", "description": desc,
                                      "generate_options": "no_gui", "id": fid, "run_options": "run", "title": title},
                       "states": {"coordinate": [8, 8], "rotation": 0, "state": "enabled"}},
           "blocks": blocks, "connections": conns, "metadata": {"file_format": 1}}
    with open(f"grc/flowgraphs/{fid}.grc", "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False, default_flow_style=None, width=120)

for v in ("sim", "pluto", "usrp"):
    make(v)
