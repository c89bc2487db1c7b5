"""`mmscn lsp` in real editors, headless: each editor's client file from editors/ starts the
server on a scenario and the test reads what the editor got.

* Neovim (Debian's 0.7): editors/neovim/ftplugin/mmscn.lua; diagnostics and a hover;
* Emacs with Eglot (built in from 29; Debian's elpa-eglot on 28): editors/emacs/mmscn-eglot.el;
  the diagnostics Flymake shows;
* Vim with ALE (Debian's vim-ale): editors/vim/ale_linters/mmscn/mmscn_lsp.vim; ALE's loclist;
* VS Code: the extension under editors/vscode packages with `vsce package` without a warning.

tests/run.sh installs the editors; an editor that cannot be had is a skip with the reason, and
a failure under CI=true (like tests/test_editors.py).  Each editor waits for the server with a
deadline of its own (a hung server fails the test; nothing is timed).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from test_editors import unavailable

ROOT = Path(__file__).resolve().parent.parent
EDITORS = ROOT / "editors"
ELPA = Path("/usr/share/emacs/site-lisp/elpa")
ALE = Path("/usr/share/vim-ale")

# line 5 runs; line 7 is a misspelt exit
SCENARIO = """\
cpus 2
spawn A
spawn kthread kw
schedule cpu0 A
schedule cpu0 kw
schedule cpu1 A
exot A
"""
TYPO = "unknown statement `exot` (did you mean `exit`?)"


def mmscn_exe() -> str:
    exe = Path(sys.executable).parent / "mmscn"
    if not exe.exists():
        pytest.skip("no mmscn console script beside this Python (install the project)")
    return str(exe)


@pytest.fixture
def scenario(tmp_path):
    p = tmp_path / "s.mmscn"
    p.write_text(SCENARIO)
    return p


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{cmd[0]} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r


def test_neovim_gets_diagnostics_and_a_hover(scenario, tmp_path):
    if not shutil.which("nvim"):
        unavailable("Neovim", "no `nvim` on PATH (Debian: apt-get install neovim)")
    init = tmp_path / "init.lua"
    init.write_text(f"""
vim.opt.runtimepath:prepend({json.dumps(str(EDITORS / "vim"))})
vim.opt.runtimepath:prepend({json.dumps(str(EDITORS / "neovim"))})
vim.g.mmscn_lsp_cmd = {{ {json.dumps(mmscn_exe())}, "lsp" }}
vim.cmd("filetype plugin on")
""")
    out = tmp_path / "out.json"
    script = tmp_path / "t.lua"
    script.write_text(f"""
local out = {{}}
vim.cmd("edit " .. {json.dumps(str(scenario))})
out.filetype = vim.bo.filetype
vim.wait(120000, function() return #vim.diagnostic.get(0) > 0 end, 50)
out.diagnostics = {{}}
for _, d in ipairs(vim.diagnostic.get(0)) do
  table.insert(out.diagnostics, {{ lnum = d.lnum, col = d.col, message = d.message, code = d.code }})
end
local params = {{ textDocument = vim.lsp.util.make_text_document_params(), position = {{ line = 4, character = 2 }} }}
out.hover = {{}}
for _, r in pairs(vim.lsp.buf_request_sync(0, "textDocument/hover", params, 120000) or {{}}) do
  if r.result then table.insert(out.hover, r.result.contents.value) end
end
vim.fn.writefile({{ vim.fn.json_encode(out) }}, {json.dumps(str(out))})
vim.cmd("qa!")
""")
    run(["nvim", "--headless", "-u", str(init), "-i", "NONE", "-c", f"luafile {script}"], cwd=tmp_path)
    got = json.loads(out.read_text())
    assert got["filetype"] == "mmscn"
    (d,) = got["diagnostics"]
    assert (d["lnum"], d["col"], d["code"]) == (6, 0, "syntax") and d["message"].startswith(TYPO)
    (h,) = got["hover"]
    assert "    5  schedule cpu0 kw" in h and "mmgrab_lazy_tlb          count 1 -> 2" in h


def test_emacs_eglot_gets_diagnostics(scenario, tmp_path):
    if not shutil.which("emacs"):
        unavailable("Emacs", "no `emacs` on PATH")
    probe = subprocess.run(["emacs", "-Q", "--batch", "--eval", f"""
(progn (let ((default-directory {json.dumps(str(ELPA) + "/")}))
         (when (file-directory-p default-directory) (normal-top-level-add-subdirs-to-load-path)))
       (kill-emacs (if (locate-library "eglot") 0 1)))"""], capture_output=True)
    if probe.returncode:
        unavailable("Eglot", "Emacs has no eglot (built in from Emacs 29; Debian: apt-get install elpa-eglot)")
    out = tmp_path / "out.txt"
    run(["emacs", "-Q", "--batch", "-L", str(EDITORS / "emacs"), "--eval", f"""
(progn
  (let ((default-directory {json.dumps(str(ELPA) + "/")}))
    (when (file-directory-p default-directory) (normal-top-level-add-subdirs-to-load-path)))
  (require 'mmscn-eglot)
  (setq mmscn-program {json.dumps(mmscn_exe())})
  (find-file {json.dumps(str(scenario))})
  (apply #'eglot (eglot--guess-contact))
  (let ((deadline (+ (float-time) 120)))
    (while (and (null (flymake-diagnostics)) (< (float-time) deadline))
      (accept-process-output nil 0.05)))
  (let ((lines (mapcar (lambda (d) (format "%d:%s:%s\\n" (line-number-at-pos (flymake-diagnostic-beg d))
                                            (flymake-diagnostic-type d) (flymake-diagnostic-text d)))
                       (flymake-diagnostics))))
    (with-temp-file {json.dumps(str(out))} (apply #'insert lines)))
  (eglot-shutdown (eglot-current-server)))"""], cwd=tmp_path)
    (line,) = out.read_text().splitlines()
    assert line.startswith("7:eglot-error:mmscn [syntax]: " + TYPO), line


def test_vim_ale_gets_diagnostics(scenario, tmp_path):
    vim = shutil.which("vim")
    if not vim:
        unavailable("Vim", "no `vim` on PATH")
    if not (ALE / "plugin" / "ale.vim").is_file():
        unavailable("ALE", f"{ALE} is missing (Debian: apt-get install vim-ale)")
    vimrc = tmp_path / "vimrc"
    vimrc.write_text(f"""set nocompatible
set runtimepath^={ALE}
set runtimepath^={EDITORS / "vim"}
let g:ale_mmscn_mmscn_lsp_executable = {json.dumps(mmscn_exe())}
filetype plugin on
""")
    out = tmp_path / "out.txt"
    script = tmp_path / "t.vim"
    script.write_text(f"""edit {scenario}
for i in range(2400)
  if len(ale#engine#GetLoclist(bufnr(''))) > 0 | break | endif
  sleep 50m
endfor
call writefile(map(copy(ale#engine#GetLoclist(bufnr(''))),
\\ {{_, d -> d.lnum . ':' . d.col . ':' . get(d, 'code', '') . ':' . d.text}}), '{out}')
qa!
""")
    run([vim, "-Nu", str(vimrc), "-i", "NONE", "-n", "-es", "-S", str(script)], cwd=tmp_path)
    (line,) = out.read_text().splitlines()
    assert line.startswith("7:1:syntax:" + TYPO), line


def test_vscode_extension_packages_without_warnings(tmp_path):
    vscode = EDITORS / "vscode"
    if not shutil.which("node"):
        unavailable("Node.js", "no `node` on PATH")
    if not (vscode / "node_modules" / "@vscode" / "vsce").is_dir():
        unavailable("npm package @vscode/vsce", "run `npm ci` in editors/vscode (tests/run.sh does)")
    vsix = tmp_path / "mmscn.vsix"
    r = run(["npx", "--no-install", "vsce", "package", "--out", str(vsix)], cwd=vscode,
            env={**os.environ, "NO_COLOR": "1"})
    text = r.stdout + r.stderr
    assert "WARNING" not in text and "warn" not in text.lower(), text
    names = set(zipfile.ZipFile(vsix).namelist())
    assert {"extension/dist/extension.js", "extension/package.json", "extension/LICENSE.txt",
            "extension/syntaxes/mmscn.tmLanguage.json", "extension/language-configuration.json"} <= names
    assert not any(n.startswith("extension/node_modules/") or n.startswith("extension/tests/") for n in names)
    manifest = json.loads(zipfile.ZipFile(vsix).read("extension/package.json"))
    assert manifest["main"] == "./dist/extension.js" and manifest["activationEvents"] == ["onLanguage:mmscn"]
    assert manifest["contributes"]["configuration"]["properties"]["mmscn.path"]["default"] == "mmscn"
    bundle = zipfile.ZipFile(vsix).read("extension/dist/extension.js").decode()
    assert 'args:["lsp"]' in bundle.replace(" ", "") and "vscode-languageclient" not in names
