#!/usr/bin/env python3
"""Write the pictures of docs/pictures.md (docs/pictures/*.png) from mmscn's own output.

Each picture is made the way a user makes it, through the `mmscn` command
line, then rendered as the tests render them (tests/test_pictures.py):
headless Chromium (Debian's `chromium`) screenshots the SVGs and the HTML
page, Graphviz (Debian's `graphviz`, `dot -Tpng`) the state graph.

    python tools/gen_pictures.py               write every picture
    python tools/gen_pictures.py zombie_mm     only the pictures named
    python tools/gen_pictures.py --list        name each picture and how it is made
    python tools/gen_pictures.py --out DIR     write them into DIR instead (the tests do)

Chromium's anti-aliasing differs from machine to machine, so the PNGs are
not compared byte for byte: after writing them, look at each one.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "pictures"
sys.path.insert(0, str(ROOT / "benchmarks"))

# the small suite of the HTML page's picture: one pass, one failure, one pass with blocks
WRONG_COUNT = """\
scenario "a counter the test gets wrong"
cpus 2
spawn A
schedule cpu0 A
spawn kthread kw
schedule cpu0 kw
assert @A.count == 1
"""


def mmscn(*args, stdout=subprocess.PIPE, cwd=ROOT) -> subprocess.CompletedProcess:
    """`mmscn ARGS` in ``cwd`` (the repository's root: the pictures name files as examples/...)."""
    exe = Path(sys.executable).parent / "mmscn"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mmscn"]
    return subprocess.run(cmd + [str(a) for a in args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE,
                          text=True)


def need(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        sys.exit(f"tools/gen_pictures.py: {name} is not installed (Debian: apt-get install chromium graphviz; "
                 f"`bash tests/run.sh` installs both)")
    return exe


def svg_size(svg: Path) -> tuple:
    m = re.search(r'<svg [^>]*width="(\d+)" height="(\d+)"', svg.read_text(encoding="utf-8"))
    return int(m.group(1)), int(m.group(2))


def screenshot(page: Path, png: Path, size: tuple, tmp: Path) -> None:
    """Headless Chromium's screenshot of ``page`` in a window of ``size`` (width, height)."""
    home = tmp / "chromium-home"
    home.mkdir(exist_ok=True)
    p = subprocess.run([need("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={home}", f"--screenshot={png}", f"--window-size={size[0]},{size[1]}",
                        page.as_uri()], capture_output=True, text=True, env={**os.environ, "HOME": str(home)})
    if p.returncode != 0 or not png.exists():
        sys.exit(f"tools/gen_pictures.py: chromium could not screenshot {page}:\n{p.stderr}")


def ok(p: subprocess.CompletedProcess, what: str, codes=(0,)) -> None:
    if p.returncode not in codes:
        sys.exit(f"tools/gen_pictures.py: {what} exited {p.returncode}:\n{p.stderr}")


# ---------------------------------------------------------------- the pictures
def timeline(example: str):
    """`mmscn draw EXAMPLE`, screenshot at the SVG's size."""
    def make(png: Path, tmp: Path) -> None:
        svg = tmp / (png.stem + ".svg")
        ok(mmscn("draw", example, "-o", svg), f"mmscn draw {example}")
        screenshot(svg, png, svg_size(svg), tmp)
    make.how = f"mmscn draw {example}"
    return make


def witness(png: Path, tmp: Path) -> None:
    svg = tmp / "witness.svg"
    ok(mmscn("explore", "examples/races/use_mm_vs_exit_unsafe.mmscn", "--svg", svg), "mmscn explore --svg",
       codes=(0, 1))      # 0: the file says `expect fail`
    screenshot(svg, png, svg_size(svg), tmp)


witness.how = "mmscn explore examples/races/use_mm_vs_exit_unsafe.mmscn --svg witness.svg"


def state_graph(png: Path, tmp: Path) -> None:
    dot = tmp / "graph.dot"
    with open(dot, "w", encoding="utf-8") as f:
        ok(mmscn("draw", "--format", "dot", "examples/races/use_mm_vs_exit_unsafe.mmscn", stdout=f),
           "mmscn draw --format dot")
    p = subprocess.run([need("dot"), "-Tpng", "-Gdpi=60", str(dot), "-o", str(png)], capture_output=True, text=True)
    ok(p, "dot -Tpng")


state_graph.how = "mmscn draw --format dot examples/races/use_mm_vs_exit_unsafe.mmscn | dot -Tpng -Gdpi=60"


def report(png: Path, tmp: Path) -> None:
    suite = tmp / "suite"
    suite.mkdir()
    shutil.copy(ROOT / "examples" / "zombie_mm.mmscn", suite)
    shutil.copy(ROOT / "examples" / "races" / "use_mm_vs_exit_safe.mmscn", suite)
    (suite / "wrong_count.mmscn").write_text(WRONG_COUNT, encoding="utf-8")
    page = tmp / "report.html"
    ok(mmscn("test", "suite", "--html", page, cwd=tmp), "mmscn test --html", codes=(1,))   # names suite/...
    screenshot(page, png, (1100, 700), tmp)


report.how = "mmscn test suite --html report.html (zombie_mm, use_mm_vs_exit_safe and a failing file)"

LONG_RUN = 1_000        # statements of bench_run.py's churn: more than MAX_FOLDS folds


def long_run(png: Path, tmp: Path) -> None:
    """The churn of benchmarks/bench_run.py, folded; the picture is the stretch around the band."""
    from bench_run import churn
    src = tmp / "churn.mmscn"
    src.write_text(churn(LONG_RUN + 1), encoding="utf-8")
    svg = tmp / "churn.svg"
    ok(mmscn("draw", "churn.mmscn", "-o", svg, cwd=tmp), "mmscn draw churn.mmscn")
    text = svg.read_text(encoding="utf-8")
    width, _ = svg_size(svg)
    band = re.search(r'<g class="folded"[^>]*>.*?<rect x="\d+" y="(\d+)" width="\d+" height="(\d+)"', text, re.S)
    top = max(0, int(band.group(1)) - 330)
    height = int(band.group(1)) + int(band.group(2)) + 260 - top
    page = tmp / "long_run.html"
    page.write_text(f'<!DOCTYPE html><html><body style="margin:0"><div style="overflow:hidden;width:{width}px;'
                    f'height:{height}px"><img src="{svg.name}" style="display:block;margin-top:-{top}px">'
                    f"</div></body></html>\n", encoding="utf-8")
    screenshot(page, png, (width, height), tmp)


long_run.how = f"mmscn draw on benchmarks/bench_run.py's churn, {LONG_RUN:,} statements: the folded middle"

PICTURES = {
    "zombie_mm": timeline("examples/zombie_mm.mmscn"),
    "x86_lazy_through_flush": timeline("examples/arch/x86_lazy_through_flush.mmscn"),
    "powerpc_shootdown_at_exit": timeline("examples/arch/powerpc_shootdown_at_exit.mmscn"),
    "long_run": long_run,
    "witness": witness,
    "state_graph": state_graph,
    "report": report,
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("names", nargs="*", metavar="NAME", help="the pictures to write (default: all)")
    ap.add_argument("--list", action="store_true", help="name each picture and the command that makes it")
    ap.add_argument("--out", type=Path, default=OUT, metavar="DIR", help="where to write them (default: docs/pictures)")
    args = ap.parse_args(argv)
    if args.list:
        for name, make in PICTURES.items():
            print(f"{name}.png: {make.how}")
        return 0
    unknown = [n for n in args.names if n not in PICTURES]
    if unknown:
        ap.error(f"no picture named {', '.join(unknown)}; the pictures: {', '.join(PICTURES)}")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names or PICTURES:
        with tempfile.TemporaryDirectory() as d:
            png = out / f"{name}.png"
            PICTURES[name](png, Path(d))
            print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
