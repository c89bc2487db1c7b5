" ALE (dense-analysis/ale; Debian's vim-ale) with `mmscn lsp` for mmscn buffers:
" diagnostics as you type, :ALEHover for the kernel state at the cursor,
" :ALEGoToDefinition for the spawn or exec that made a task or mm,
" :ALEFindReferences, :ALERename, completion (let g:ale_completion_enabled = 1),
" and the "did you mean" fixes with :ALECodeAction.
" ALE finds this file when editors/vim is on 'runtimepath'.
"   g:ale_mmscn_mmscn_lsp_executable  the mmscn command (default: mmscn)
call ale#Set('mmscn_mmscn_lsp_executable', 'mmscn')

call ale#linter#Define('mmscn', {
\   'name': 'mmscn_lsp',
\   'lsp': 'stdio',
\   'executable': {b -> ale#Var(b, 'mmscn_mmscn_lsp_executable')},
\   'command': '%e lsp',
\   'project_root': {b -> fnamemodify(bufname(b), ':p:h')},
\})
