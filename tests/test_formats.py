"""The registry of output formats (mmscn/formats.py) that run, explore, compare and test share."""
import io
import json

import pytest

from mmscn import formats

from conftest import EXAMPLES


@pytest.mark.parametrize("key", sorted(formats.FORMATS))
def test_every_registered_format_is_a_format_class(key):
    cls = formats.get(*key)
    assert isinstance(cls, type) and issubclass(cls, formats.Format), key


def test_each_command_has_text_and_the_json_ones_json():
    commands = {c for c, _ in formats.FORMATS}
    assert commands == {"run", "explore", "compare", "test"}
    assert all((c, "text") in formats.FORMATS for c in commands)
    assert all((c, "json") in formats.FORMATS for c in ("run", "explore", "compare"))


def test_json_is_one_document_for_one_report_and_a_list_otherwise():
    class Doc(formats.JsonFormat):
        def doc(self, n):
            return {"n": n}
    for reports, want in (([1], {"n": 1}), ([1, 2], [{"n": 1}, {"n": 2}]), ([], [])):
        out = io.StringIO()
        f = Doc(out)
        for r in reports:
            f.item(r)
        f.end()
        assert json.loads(out.getvalue()) == want and out.getvalue() == json.dumps(want, indent=2) + "\n"


def test_a_format_is_registered_in_one_line(monkeypatch, capsys):
    """register("run", NAME, "module:Class") is all a new format needs: get() and render() find it."""
    import sys
    import types

    class Count(formats.Format):
        def item(self, result, lines):
            self.out.write(f"{len(result.steps)} steps\n")

    mod = types.ModuleType("tests_formats_dummy")
    mod.Count = Count
    monkeypatch.setitem(sys.modules, "tests_formats_dummy", mod)
    monkeypatch.setattr(formats, "FORMATS", dict(formats.FORMATS))    # the registry as it was, after the test
    formats.register("run", "count", "tests_formats_dummy:Count")
    from mmscn.dsl.resolve import load_file
    from mmscn.interpreter.runner import Runner
    sc, text = load_file(str(EXAMPLES / "zombie_mm.mmscn"))
    lines = text.split("\n")
    r = Runner(sc, lines).run()
    assert formats.get("run", "count") is Count
    assert formats.render("run", "count", [(r, lines)]) == f"{len(r.steps)} steps\n"
    # the built-in text format is the `mmscn run` trace
    from mmscn.interpreter.report import write_text
    buf = io.StringIO()
    write_text(r, lines, buf)
    assert formats.render("run", "text", [(r, lines)]) == buf.getvalue()


def test_the_command_line_chooses_by_a_flag_named_after_the_format(monkeypatch):
    from argparse import Namespace
    assert formats.chosen("run", Namespace(json=True)) is formats.RunJson
    assert formats.chosen("run", Namespace(json=False)) is formats.RunText
    assert formats.chosen("test", Namespace(junit_xml="out.xml")) is formats.get("test", "text")   # a file: not stdout
    monkeypatch.setattr(formats, "FORMATS", dict(formats.FORMATS))
    formats.register("run", "plain-text", "mmscn.formats:RunText")
    assert formats.chosen("run", Namespace(json=False, plain_text=True)) is formats.RunText


def test_an_unknown_format_is_a_key_error():
    with pytest.raises(KeyError):
        formats.get("run", "no-such-format")
