"""The house rules of issue 17, checked: a light ``--help``, no import cycles, layers import downward only,
one error root, and every catalogue entry resolvable."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKGS = ("isac_testbed", "blocks", "calibration", "isac_opt", "ris_driver")
#: layer rank: a module may import only its own package or a lower-ranked one (isac_opt.errors, the
#: dependency-free error root, is allowed from ris_driver).
RANK = {"isac_testbed": 4, "blocks": 3, "calibration": 2, "isac_opt": 1, "ris_driver": 1}
HEAVY = ("torch", "gnuradio", "cvxpy", "matplotlib", "scipy", "zmq", "serial")


def _modules():
    mods = {}
    for p in PKGS:
        for f in (ROOT / p).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f
    return mods


def _graph():
    """module -> set of project modules it imports (anywhere in the file, function-local included)."""
    mods = _modules()
    graph = {}
    for name, f in mods.items():
        ispkg = f.name == "__init__.py"
        deps = set()
        for node in ast.walk(ast.parse(f.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if ispkg else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    m = ".".join(base + ([node.module] if node.module else []))
                else:
                    m = node.module
                # `from pkg import sub` is an edge to pkg.sub; `from mod import name` an edge to mod
                targets = [m + "." + a.name if m + "." + a.name in mods else m for a in node.names]
            for t in targets:
                while t and t not in mods and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in mods and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def _cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_planted_cycle():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(g) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_layers_import_downward_only():
    bad = []
    for mod, deps in _graph().items():
        a = mod.split(".")[0]
        for d in deps:
            b = d.split(".")[0]
            if d == "isac_opt.errors":
                continue
            if a != b and RANK[b] >= RANK[a]:
                bad.append(f"{mod} -> {d}")
    assert bad == []


def test_help_is_light_and_fast():
    """`isac-testbed --help` and `design --help` import no torch, gnuradio, cvxpy or matplotlib."""
    code = ("import sys, io, contextlib\n"
            "from isac_testbed.cli import main\n"
            "for argv in (['--help'], ['design', '--help'], ['reproduce', '--help'], ['train', '--help']):\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        try: main(argv)\n"
            "        except SystemExit: pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


def test_catalogue_entries_resolve_and_match_the_runners():
    """Every method / target / trainer entry point imports; a method family serves exactly its names."""
    from isac_opt import registry
    registry.load_catalogs()
    families = {}
    for m in registry.METHODS.values():
        families.setdefault((m.entry, m.scenario_kind), set()).add(m.name)
    for (entry, kind), names in families.items():
        fn = registry.resolve(entry)
        assert callable(fn)
        runners = sys.modules[fn.__module__].RUNNERS
        assert set(runners) == names, (entry, kind)
    for t in list(registry.REPRODUCE.values()) + list(registry.TRAINERS.values()):
        assert callable(registry.resolve(t.entry)), t


def test_one_error_root():
    from isac_opt.errors import UserError, IsacError, ScenarioError, DesignFileError, InfeasibleDesignError
    from ris_driver.errors import RisError, RisInputError
    from calibration.errors import CalibrationError, HardwareUnavailable
    for cls in (IsacError, ScenarioError, DesignFileError, InfeasibleDesignError, RisError, RisInputError,
                CalibrationError, HardwareUnavailable):
        assert issubclass(cls, UserError), cls


def test_user_error_is_one_line_and_a_bug_is_a_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('kind = "paper-a"\npower_w = -5.0\n')
    r = subprocess.run([sys.executable, "-m", "isac_testbed", "design", "--scenario", str(bad), "--seed", "1",
                        "--out", str(tmp_path / "d.npz")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["isac-testbed design: error: scenario field 'power_w': expected a number "
                                     "> 0.0, got -5.0"]
    # a programming error (not a UserError) is not disguised as a user error
    code = ("import isac_testbed.cli as c\n"
            "def boom(sub):\n"
            "    p = sub.add_parser('scenario'); p.set_defaults(func=lambda a: {}['missing'])\n"
            "import isac_opt.registry as r\n"
            "r_resolve = r.resolve\n"
            "r.resolve = lambda s: boom if s.endswith('add_scenario') else r_resolve(s)\n"
            "c.main(['scenario'])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode == 1 and "Traceback" in r.stderr and "KeyError" in r.stderr
