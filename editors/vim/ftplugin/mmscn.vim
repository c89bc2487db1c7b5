" Vim filetype plugin
" Language: mmscn scenarios
if exists("b:did_ftplugin")
  finish
endif
let b:did_ftplugin = 1

let s:cpo_save = &cpo
set cpo&vim

setlocal commentstring=#\ %s
setlocal comments=:#
setlocal formatoptions-=t formatoptions+=croql
" :make runs `mmscn check` on this file; errors land in the quickfix list
compiler mmscn

let b:undo_ftplugin = "setlocal commentstring< comments< formatoptions< makeprg< errorformat<"
      \ . " | unlet! b:current_compiler"

let &cpo = s:cpo_save
unlet s:cpo_save
