;;; mmscn-mode-tests.el --- ERT tests for mmscn-mode  -*- lexical-binding: t; -*-

;; emacs -Q --batch -L editors/emacs -l editors/emacs/mmscn-mode-tests.el \
;;       -f ert-run-tests-batch-and-exit
;; (tests/test_editors.py runs this.)

;;; Code:

(require 'ert)
(require 'mmscn-mode)

(defconst mmscn-test-text
  "# zombie mm: the real user exits while a lazy user borrows it
scenario \"zombie\"; arch linux-2.3
spawn kthread kw
schedule cpu0 kw; online cpu1
assert @A.1.users == 0, cpu1 is online, cpu0.online == true
assert kw.mm == none and not A is dead
cpu0 { unlazy }
expect error \"spawn A\"
")

(defun mmscn-test-face-at (needle &optional nth)
  "The face at the NTH (default 0) occurrence of NEEDLE in `mmscn-test-text'."
  (with-temp-buffer
    (insert mmscn-test-text)
    (mmscn-mode)
    (font-lock-ensure)
    (goto-char (point-min))
    (search-forward needle nil nil (1+ (or nth 0)))
    (let ((f (get-text-property (match-beginning 0) 'face)))
      (if (consp f) (car f) f))))

(ert-deftest mmscn-faces-at-chosen-positions ()
  (should (eq (mmscn-test-face-at "#") 'font-lock-comment-delimiter-face))
  (should (eq (mmscn-test-face-at "real user") 'font-lock-comment-face))
  (should (eq (mmscn-test-face-at "scenario") 'mmscn-statement-face))
  (should (eq (mmscn-test-face-at "\"zombie\"") 'font-lock-string-face))
  (should (eq (mmscn-test-face-at "arch") 'mmscn-statement-face))
  (should (eq (mmscn-test-face-at "linux-2.3") 'mmscn-arch-face))
  (should (eq (mmscn-test-face-at "kthread") 'mmscn-keyword-face))
  (should (eq (mmscn-test-face-at "kw") 'mmscn-task-face))
  (should (eq (mmscn-test-face-at "cpu0") 'mmscn-cpu-face))
  (should (eq (mmscn-test-face-at "@A.1") 'mmscn-mm-face))
  (should (eq (mmscn-test-face-at "users") 'mmscn-field-face))
  (should (eq (mmscn-test-face-at "0,") 'mmscn-number-face))
  (should (eq (mmscn-test-face-at "none") 'mmscn-constant-face))
  (should (eq (mmscn-test-face-at "and") 'mmscn-operator-face))
  (should (eq (mmscn-test-face-at "not") 'mmscn-operator-face))
  (should (eq (mmscn-test-face-at "dead") 'mmscn-constant-face))
  (should (eq (mmscn-test-face-at "unlazy") 'mmscn-statement-face))
  (should (eq (mmscn-test-face-at "error") 'mmscn-constant-face))
  ;; inside a string a statement word is just text
  (should (eq (mmscn-test-face-at "spawn A") 'font-lock-string-face)))

(ert-deftest mmscn-a-word-is-read-by-where-it-stands ()
  ;; `online' begins a statement, is a state after `is', a field after a dot
  (should (eq (mmscn-test-face-at "online") 'mmscn-statement-face))
  (should (eq (mmscn-test-face-at "online" 1) 'mmscn-constant-face))
  (should (eq (mmscn-test-face-at "online" 2) 'mmscn-field-face))
  ;; `mm' is a keyword in `spawn B mm @B' and a field in `kw.mm'
  (should (eq (mmscn-test-face-at "mm ==") 'mmscn-field-face))
  ;; a statement after `;' and inside a per-CPU block
  (should (eq (mmscn-test-face-at "schedule") 'mmscn-statement-face)))

(ert-deftest mmscn-auto-mode-and-comments ()
  (should (eq (assoc-default "dir/x.mmscn" auto-mode-alist #'string-match-p) 'mmscn-mode))
  (with-temp-buffer
    (insert "spawn A\n")
    (mmscn-mode)
    (should (derived-mode-p 'prog-mode))
    (comment-region (point-min) (point-max))
    (should (equal (buffer-string) "# spawn A\n"))
    ;; a comment runs to the end of the line and no further
    (goto-char (point-min))
    (end-of-line)
    (should (nth 4 (syntax-ppss)))
    (forward-char 1)
    (should-not (nth 4 (syntax-ppss)))))

(ert-deftest mmscn-compile-regexp ()
  ;; the exact shape `mmscn check' prints
  (let ((re (nth 1 mmscn-compilation-error-regexp)))
    (should (string-match re "examples/zombie_mm.mmscn:12:5: error: no task named `B'"))
    (should (equal (match-string 1 "examples/zombie_mm.mmscn:12:5: error: x") "examples/zombie_mm.mmscn"))
    (should (string-match re "a.mmscn:3:1: violation: mm_count underflow"))
    (should-not (string-match re "    3 | schedule cpu0"))
    (should-not (string-match re "a.mmscn: 3 errors")))
  (should (memq 'mmscn compilation-error-regexp-alist))
  (with-temp-buffer
    (setq buffer-file-name "/tmp/some dir/x.mmscn")
    (mmscn-mode)
    (should (equal compile-command "mmscn check x.mmscn"))
    (should (member "NO_COLOR=1" compilation-environment))))

(provide 'mmscn-mode-tests)
;;; mmscn-mode-tests.el ends here
