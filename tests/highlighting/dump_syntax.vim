" Print the syntax group under every column of the files in g:mmscn_files
" (one line of comma-separated names per source line, one per character) into g:mmscn_out.
" Used by tests/test_editors.py with `vim -N -u NONE -i NONE -es`.
set nocompatible
let &runtimepath = g:mmscn_rtp . ',' . &runtimepath
filetype plugin on
syntax on
let s:out = []
for f in g:mmscn_files
  execute 'edit ' . fnameescape(f)
  call add(s:out, 'FILE ' . &filetype)
  for l in range(1, line('$'))
    let s:row = []
    let s:text = getline(l)
    " one entry per character, not per byte, as the other engines count
    for i in range(strchars(s:text))
      call add(s:row, synIDattr(synID(l, byteidx(s:text, i) + 1, 1), 'name'))
    endfor
    call add(s:out, join(s:row, ','))
  endfor
endfor
call writefile(s:out, g:mmscn_out)
qall!
