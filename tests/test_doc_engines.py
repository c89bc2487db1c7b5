"""Sphinx and MkDocs code blocks find the lexer by its alias, through the
pygments.lexers entry point, and colour a scenario without an error token."""
import re
import subprocess
import sys

SCENARIO = """arch generic
cpus 2
spawn A                # fork
schedule cpu0 A
assert @A.users == 1
"""

# what each word must come out as (Pygments short CSS classes)
WANT = [("k", "arch"), ("no", "generic"), ("mi", "2"), ("k", "spawn"), ("nv", "A"),
        ("c1", "# fork"), ("nb", "cpu0"), ("ni", "@A")]


def spans(html: str) -> list:
    return re.findall(r'<span class="([a-z0-9]+)">([^<]*)</span>', html)


def test_sphinx_code_block(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text('project = "mmscn"\n')
    body = "".join("   " + line + "\n" for line in SCENARIO.splitlines())
    (src / "index.rst").write_text("Scenario\n========\n\n.. code-block:: mmscn\n\n" + body)
    # -W: Sphinx warns "Could not lex literal_block as mmscn" when the lexer is
    # missing or emits an error token; make that a failure.
    r = subprocess.run([sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(src), str(tmp_path / "out")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = spans((tmp_path / "out" / "index.html").read_text())
    for want in WANT:
        assert want in got, (want, got)
    assert not any(cls == "err" for cls, _ in got)


def test_mkdocs_fenced_code_block():
    # MkDocs renders Markdown with Python-Markdown; codehilite asks Pygments
    # for the lexer named in the fence.
    import markdown
    html = markdown.markdown("```mmscn\n" + SCENARIO + "```\n", extensions=["fenced_code", "codehilite"])
    got = spans(html)
    for want in WANT:
        assert want in got, (want, got)
    assert not any(cls == "err" for cls, _ in got)
