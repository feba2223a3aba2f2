"""Scenario configuration: defaults, TOML round trip, and one clear error per bad field."""
import math

import pytest

from isac_opt.paper_a.scenario import ScenarioA
from isac_opt.scenario import load_scenario
from isac_opt.errors import ScenarioError


def test_paper_a_defaults_match_spec_A12():
    s = load_scenario("paper-a")
    assert (s.M, s.N, s.K, s.L, s.Q) == (6, 64, 3, 20, 3)
    assert s.power_w == pytest.approx(10 ** (20 / 10))
    assert s.amp == pytest.approx(math.sqrt(100 / 6))
    assert s.noise_radar_w == pytest.approx(10 ** ((-80 - 30) / 10))
    assert s.clutter_bins == (0, 1, 2)
    assert [round(math.degrees(a)) for a in s.clutter_angles_rad] == [-60, -20, 45]
    assert s.theta_psk == pytest.approx(math.pi / 4)


def test_toml_round_trip(tmp_path):
    s = ScenarioA(N=32, gamma_db=(5.0, 10.0, 15.0), ris_leg_model="reciprocal")
    p = tmp_path / "s.toml"
    s.save_toml(p)
    assert load_scenario(str(p)) == s


@pytest.mark.parametrize("kw, field", [
    ({"power_w": -1.0}, "power_w"),
    ({"M": 0}, "M"),
    ({"clutter_bins": (0, 1, 20)}, "clutter_bins[2]"),
    ({"psk_order": 5}, "psk_order"),
    ({"gamma_db": (10.0, 10.0)}, "gamma_db"),
    ({"noise_comm_w": (1e-11,) * 4}, "noise_comm_w"),
    ({"xi_q_sq": (1.0, 1.0)}, "xi_q_sq"),
    ({"theta0_rad": float("nan")}, "theta0_rad"),
    ({"ris_leg_model": "mirror"}, "ris_leg_model"),
    ({"K": 2.5}, "K"),
    ({"d_bt": 0.0}, "d_bt"),
])
def test_bad_fields_name_the_field(kw, field):
    with pytest.raises(ScenarioError) as ei:
        ScenarioA(**kw)
    assert ei.value.field == field
    assert f"'{field}'" in str(ei.value) and "expected" in str(ei.value)


def test_unknown_field_and_wrong_kind_in_toml(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text('kind = "paper-a"\nMM = 3\n')
    with pytest.raises(ScenarioError, match="'MM'"):
        load_scenario(str(p))
    p.write_text('kind = "paper-z"\n')
    with pytest.raises(ScenarioError, match="'kind'"):
        load_scenario(str(p))
    p.write_text('M = [1, \n')
    with pytest.raises(ScenarioError, match="TOML"):
        load_scenario(str(p))


def test_missing_scenario_file():
    with pytest.raises(ScenarioError, match="built-in name"):
        load_scenario("/no/such/file.toml")
