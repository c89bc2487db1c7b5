;;; dump_faces.el --- print the face under every column of .mmscn files  -*- lexical-binding: t; -*-
;; emacs -Q --batch -L editors/emacs -l tests/highlighting/dump_faces.el FILE...
;; Prints, per file, "FILE <major-mode>" and then one line per source line:
;; the face at each column, comma-separated (empty for none).  The files are
;; opened through `auto-mode-alist', as a user would open them.
(require 'mmscn-mode)
(setq-default indent-tabs-mode nil)
(dolist (file command-line-args-left)
  (with-current-buffer (find-file-noselect file)
    (font-lock-ensure)
    (princ (format "FILE %s\n" major-mode))
    (goto-char (point-min))
    (while (not (eobp))
      (let ((end (line-end-position)) (faces nil))
        (while (< (point) end)
          (let ((f (get-text-property (point) 'face)))
            (push (symbol-name (if (consp f) (car f) (or f 'nil))) faces))
          (forward-char 1))
        (princ (concat (mapconcat (lambda (s) (if (equal s "nil") "" s)) (nreverse faces) ",") "\n")))
      (forward-line 1))))
(setq command-line-args-left nil)
