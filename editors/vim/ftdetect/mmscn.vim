" .mmscn scenarios (how Linux lends address spaces: task->mm, active_mm)
autocmd BufNewFile,BufRead *.mmscn setfiletype mmscn
