" Vim compiler file
" Compiler: mmscn check (parse and resolve a scenario without running it)
" Messages look like `FILE:LINE:COL: error: message`, then the source line
" and a caret, then `  note: ...` lines and a `FILE: N errors` summary.
if exists("current_compiler")
  finish
endif
let current_compiler = "mmscn"

if exists(":CompilerSet") != 2
  command -nargs=* CompilerSet setlocal <args>
endif

let s:cpo_save = &cpo
set cpo&vim

CompilerSet makeprg=mmscn\ check\ $*\ %:S
" The kind word (error, violation, failure) starts the message; only `error`
" sets the quickfix type, the others keep their word in the text.
CompilerSet errorformat=
      \%f:%l:%c:\ %trror:\ %m,
      \%f:%l:%c:\ %m,
      \%-G%.%#

let &cpo = s:cpo_save
unlet s:cpo_save
