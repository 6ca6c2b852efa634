"""What a Python file or notebook says, read with `ast` only; hostile sources become problems, never
exceptions, and stay inside their size, token, depth and node bounds."""

from __future__ import annotations

import ast
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jieyao.formats import pysource
from jieyao.formats.pysource import (
    DEFAULT_PREFILTER,
    analyse_notebook,
    analyse_python,
    imported_modules,
    might_be_faceswap,
    split_magics,
)
from jieyao.imitations import apps


def uses(facts) -> set[tuple[str, str]]:
    return {(u.call, u.string) for u in facts.uses}


# -- facts --------------------------------------------------------------------------------------

def test_imports_carry_every_dotted_prefix_and_relative_dots():
    f = analyse_python("import a.b.c as abc\nfrom x.y import z, w as v\nfrom . import sib\nfrom ..up import q\n")
    assert {"a", "a.b", "a.b.c", "x", "x.y", "x.y.z", "x.y.w", ".sib", "..up", "..up.q"} <= set(f.imports)
    assert "abc" not in f.imports and "v" not in f.imports


def test_calls_as_written_and_with_aliases_resolved():
    f = analyse_python(
        "import onnxruntime as ort\nfrom insightface.model_zoo import get_model as gm\n"
        "s = ort.InferenceSession('m.onnx')\nm = gm('x')\nmake().get(1)\n(lambda: 0)()\n")
    assert {"ort.InferenceSession", "onnxruntime.InferenceSession", "gm", "insightface.model_zoo.get_model",
            ".get", "make"} <= set(f.calls)
    assert f.where["call:ort.InferenceSession"] == "line 3"


def test_attributes_keep_constant_indexes_and_names_targets_keywords_are_kept():
    f = analyse_python(
        "class Swap:\n    def run(self, g):\n        self.emap = to_array(g.graph.initializer[-1])\n"
        "        return self.s.get(a, b, c, paste_back=True)\nasync def later(): pass\n")
    assert "g.graph.initializer[-1]" in f.attributes and "g.graph.initializer" in f.attributes
    assert {"Swap", "run", "later"} <= set(f.names)
    assert "self.emap" in f.targets
    assert "paste_back" in f.keywords
    assert f.parsed and not f.problems


def test_strings_are_bounded_in_length_and_count(monkeypatch):
    long = "x" * 5000
    f = analyse_python(f"a = '{long}'\n")
    assert f.strings == ("x" * pysource.MAX_STRING_CHARS,)
    monkeypatch.setattr(pysource, "MAX_ITEMS", 50)
    many = analyse_python("\n".join(f"v{i} = 's{i}'" for i in range(200)))
    assert len(many.strings) == 50
    assert any("more than 50 distinct" in p and "string" in p for p in many.problems)


# -- uses: which strings reach which calls -------------------------------------------------------

def test_a_string_reaches_a_call_directly_and_through_nested_calls():
    f = analyse_python("m = get_model(os.path.join(d, 'inswapper_128.onnx'))\n")
    assert {("get_model", "inswapper_128.onnx"), ("os.path.join", "inswapper_128.onnx")} <= uses(f)


def test_a_string_reaches_a_call_through_variables_defaults_and_subscripts():
    f = analyse_python(
        "base = 'models'\npath = base + '/reswapper_256.onnx'\nalias = path\n"
        "def load(p=alias):\n    return ort.InferenceSession(p)\n"
        "MODELS = {}\nMODELS['swap'] = 'simswap_256.onnx'\nsession = ort.InferenceSession(MODELS['swap'])\n"
        "class A:\n    def __init__(self):\n        self.model_path = 'ghost_1_256.onnx'\n"
        "    def load(self):\n        return get_model(self.model_path)\n")
    got = uses(f)
    assert ("ort.InferenceSession", "/reswapper_256.onnx") in got  # two hops: path -> alias -> p
    assert ("ort.InferenceSession", "simswap_256.onnx") in got
    assert ("get_model", "ghost_1_256.onnx") in got


def test_a_blocklist_string_does_not_reach_the_call_that_looks_it_up():
    f = analyse_python(
        "KNOWN = {'inswapper_128.onnx': 'e4a3'}\n"
        "def known(p):\n    return KNOWN.get(os.path.basename(p)) == sha(p)\n")
    assert not any(u.string == "inswapper_128.onnx" for u in f.uses)
    assert "inswapper_128.onnx" in f.strings


def test_notebook_cells_share_bindings():
    nb = apps.notebook_bytes([("code", "path = 'models/inswapper_128.onnx'\n"),
                              ("code", "import insightface\nm = insightface.model_zoo.get_model(path)\n")])
    f = analyse_notebook(nb)
    use = next(u for u in f.uses if u.string == "models/inswapper_128.onnx")
    assert use.call == "insightface.model_zoo.get_model" and use.where == "cell 1 line 2"
    assert f.cells == 2


# -- bad Python ----------------------------------------------------------------------------------

def test_syntax_error_is_a_problem_with_its_line():
    f = analyse_python("import os\n\ndef broken(:\n    pass\n")
    assert not f.parsed and f.imports == ()
    assert f.problems and f.problems[0].startswith("syntax error at line 3")


def test_python2_source_is_a_problem_not_an_exception():
    f = analyse_python("print 'hello'\n")
    assert not f.parsed and "syntax error at line 1" in f.problems[0]


def test_null_bytes_are_a_problem():
    f = analyse_python("import os\x00\n")
    assert not f.parsed and "null bytes" in f.problems[0]


def test_bom_and_invalid_escapes_still_parse():
    f = analyse_python("\ufeffimport insightface\nx = '\\d'\n")
    assert f.parsed and "insightface" in f.imports and f.strings == ("\\d",)


@pytest.mark.parametrize(("source", "expect"), [
    ("x = a" + ".b" * 100_000 + "\n", "RecursionError"),
    ("x = " + "-" * 100_000 + "1\n", "ran out of memory or stack"),
    ("x = " + "(" * 300 + ")" * 300 + "\n", "too many nested parentheses"),
])
def test_deeply_nested_expressions_are_problems(source, expect):
    f = analyse_python(source, max_tokens=1_000_000)
    assert not f.parsed and expect in f.problems[0]


def test_nesting_that_parses_is_walked_to_a_bounded_depth():
    source = "import insightface\nx = " + "[" * 150 + "'deep'" + "]" * 150 + "\n"
    f = analyse_python(source)
    assert f.parsed and "insightface" in f.imports
    assert "deep" not in f.strings  # past MAX_DEPTH
    assert any(f"nested deeper than {pysource.MAX_DEPTH}" in p for p in f.problems)


def test_node_budget_stops_the_walk(monkeypatch):
    monkeypatch.setattr(pysource, "MAX_NODES", 50)
    f = analyse_python("\n".join(f"import m{i}" for i in range(100)))
    assert f.parsed and 0 < len(f.imports) < 100
    assert any("more than 50 syntax nodes" in p for p in f.problems)


def test_fifty_megabytes_of_one_line_is_refused_before_parsing():
    text = "x = 1" + " + 1" * (50 * 1024 * 1024 // 4)
    started = time.monotonic()
    f = analyse_python(text)
    assert time.monotonic() - started < 0.5
    assert not f.parsed and "more than max_bytes" in f.problems[0]


def test_a_dense_source_under_the_size_bound_is_refused_by_its_token_count():
    text = "x = [" + "0," * 600_000 + "]\n"  # 1.2 MB, a 600k-node tree (≈0.5 GB if it were parsed)
    started = time.monotonic()
    f = analyse_python(text)
    assert time.monotonic() - started < 1.0
    assert not f.parsed and "more than max_tokens" in f.problems[0]


# -- notebooks -----------------------------------------------------------------------------------

def test_magics_and_shell_lines_are_kept_as_shell_and_blanked_for_parsing():
    src = ("!git clone https://example.org/x \\\n  --depth 1\n%cd x\nfiles = !ls\n"
           "if True:\n    !pip install y\nimport insightface\n")
    python, shell = split_magics(src)
    assert shell == ["!git clone https://example.org/x \\", "--depth 1", "%cd x", "files = !ls", "!pip install y"]
    assert "import insightface" in python and "!" not in python
    assert ast.parse(python).body  # what is left is Python


@pytest.mark.parametrize(("cell", "python_kept", "shell"), [
    ("%%bash\ngit clone https://example.org/x\n", False, ["%%bash", "git clone https://example.org/x"]),
    ("%%capture\nimport insightface\n", True, ["%%capture"]),
    ("%%writefile patch.py\nimport insightface\n", True, ["%%writefile patch.py"]),
    ("%%writefile notes.txt\nimport insightface\n", False, ["%%writefile notes.txt"]),
    ("%%html\n<b>import insightface</b>\n", False, ["%%html"]),
])
def test_cell_magics_decide_for_the_whole_cell(cell, python_kept, shell):
    f = analyse_notebook(apps.notebook_bytes([("code", cell)]))
    assert ("insightface" in f.imports) is python_kept
    assert list(f.shell) == shell


def test_markdown_cells_are_not_read():
    f = analyse_notebook(apps.notebook_bytes([("markdown", "import insightface\n!git clone roop"),
                                              ("code", "x = 1\n")]))
    assert f.imports == () and f.shell == () and f.cells == 1


def test_source_as_one_string_or_a_list_of_lines():
    for as_lines in (True, False):
        f = analyse_notebook(apps.notebook_bytes([("code", "import insightface\nimport onnx\n")], as_lines=as_lines))
        assert {"insightface", "onnx"} <= set(f.imports)


def test_a_cell_that_does_not_parse_is_skipped_and_the_rest_analysed():
    f = analyse_notebook(apps.notebook_bytes([("code", "print 'py2'\n"), ("code", "import insightface\n")]))
    assert f.parsed and "insightface" in f.imports and f.cells == 1
    assert f.problems[0].startswith("cell 0: syntax error at line 1")


@pytest.mark.parametrize(("data", "problem"), [
    (b"this is not json", "not JSON"),
    (b"\xff\xfe\x00garbage", "not JSON"),
    (b"[1, 2, 3]", "JSON list, not an object"),
    (json.dumps({"cells": {"0": "import x"}}).encode(), "'cells' is dict, not a list"),
    (json.dumps({"nbformat": 4}).encode(), "'cells' is NoneType, not a list"),
    (json.dumps({"worksheets": [{"cells": []}], "nbformat": 3}).encode(), "nbformat 3"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
])
def test_notebooks_that_are_not_nbformat4_are_problems(data, problem):
    f = analyse_notebook(data)
    assert not f.parsed and problem in f.problems[0]


def test_cells_with_bad_sources_are_problems_and_skipped():
    doc = {"cells": [
        {"cell_type": "code", "source": ["import a\n", 7]},
        {"cell_type": "code", "source": {"text": "import b"}},
        "not a cell",
        {"cell_type": "code"},
        {"cell_type": "code", "source": "import insightface\n"},
    ], "nbformat": 4}
    f = analyse_notebook(json.dumps(doc).encode())
    assert f.imports == ("insightface",)
    assert [p.split(":")[0] for p in f.problems] == ["cell 0", "cell 1", "cell 2 is not an object", "cell 3"]
    assert "not a string or a list of strings" in f.problems[0]


def test_notebook_bounds_on_size_cells_and_tokens():
    big = analyse_notebook(b"{" + b" " * 100 + b"}", max_bytes=50)
    assert not big.parsed and "more than max_bytes=50" in big.problems[0]
    many = analyse_notebook(apps.notebook_bytes([("code", f"import m{i}\n") for i in range(20)]), max_cells=5)
    assert len(many.imports) == 5 and "only the first were read" in many.problems[0]
    cells = [("code", "x = [" + "1, " * 300 + "]\n") for _ in range(5)]
    dense = analyse_notebook(apps.notebook_bytes(cells), max_tokens=1500)
    assert dense.cells == 2 and any("more than max_tokens=1500" in p for p in dense.problems)


# -- prefilter -----------------------------------------------------------------------------------

def test_imported_modules_reads_import_lines_without_parsing():
    src = (b"import os, a.b as c\nfrom x.y import (z,\n    later)\nfrom . import sib\n"
           b"import\tinsightface; from lib.cli import args\n  from ..pkg.mod import *\n")
    assert imported_modules(src) == {b"os", b"a.b", b"x.y", b"x.y.z", b"sib", b"insightface", b"lib.cli",
                                     b"lib.cli.args", b"pkg.mod"}


@pytest.mark.parametrize(("source", "passes"), [
    (b"import os\nimport numpy as np\nprint(np.zeros(3))\n", False),
    (b"import json\n# an interface, not a face swapper\n", False),
    (b"import insightface\n", True),
    (b"from core.leras import nn\n", True),
    (b"from lib.cli import args as cli_args\n", True),
    (b"from lib import utils\n", False),
    (b"urlretrieve(URL + '/inswapper_128.onnx')\n", True),
    (b"open('merged_embeddings.txt')\n", True),
])
def test_python_prefilter(source, passes):
    assert might_be_faceswap(source) is passes
    assert might_be_faceswap(source.decode()) is passes


def test_notebook_prefilter_reads_the_raw_json():
    assert might_be_faceswap(apps.faceswap_notebook(), notebook=True)
    assert might_be_faceswap(b'{"cells": [{"source": "!git clone https://github.com/hacksider/x"}]}', notebook=True)
    assert not might_be_faceswap(apps.notebook_bytes([("code", "import pandas\n")]), notebook=True)


def test_prefilter_passes_every_imitation_key_file():
    for app, make in apps.TREES.items():
        tree = make()
        for path in apps.KEY_FILES[app]:
            assert DEFAULT_PREFILTER.python(tree[path]), f"{app}: {path}"


# -- fuzz ----------------------------------------------------------------------------------------

_FIXTURE_SOURCES = [d.decode() for t in (apps.roop_tree(), apps.visomaster_tree()) for p, d in t.items()
                    if p.endswith(".py") and d]


@given(st.text(max_size=400))
def test_fuzz_analyse_python_never_raises(text):
    f = analyse_python(text)
    assert f.parsed or f.problems


@given(st.sampled_from(_FIXTURE_SOURCES), st.integers(0, 10_000), st.text(max_size=8))
def test_fuzz_mutated_sources_never_raise(source, at, insert):
    at %= len(source) + 1
    f = analyse_python(source[:at] + insert + source[at:])
    assert f.parsed or f.problems


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                  max_size=4), max_leaves=20)
_CELL = st.fixed_dictionaries({"cell_type": st.sampled_from(["code", "markdown", 3]),
                               "source": st.one_of(st.text(max_size=80), st.lists(st.text(max_size=30), max_size=4),
                                                   _JSON)})


@given(st.binary(max_size=300))
def test_fuzz_analyse_notebook_bytes_never_raises(data):
    f = analyse_notebook(data)
    assert f.parsed or f.problems or f == pysource.SourceFacts()


@settings(max_examples=40)
@given(st.lists(st.one_of(_CELL, _JSON), max_size=6))
def test_fuzz_notebook_structures_never_raise(cells):
    f = analyse_notebook(json.dumps({"cells": cells, "nbformat": 4}).encode())
    assert isinstance(f.problems, tuple)


@given(st.binary(max_size=400))
def test_fuzz_imported_modules_never_raises(data):
    assert all(isinstance(n, bytes) and n for n in imported_modules(data))
