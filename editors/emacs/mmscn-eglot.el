;;; mmscn-eglot.el --- `mmscn lsp' for mmscn-mode buffers through Eglot  -*- lexical-binding: t; -*-

;; Version: 0.1.0
;; Package-Requires: ((emacs "26.3") (eglot "1.9"))
;; Keywords: languages
;; SPDX-License-Identifier: GPL-2.0-only

;;; Commentary:

;; Registers the mmscn language server with Eglot (built into Emacs 29;
;; Debian's elpa-eglot on Emacs 28): diagnostics as you type through
;; Flymake, the kernel state at point through ElDoc (hover), `xref' for
;; the spawn or exec that made a task or mm, `eglot-rename',
;; completion at point, and the "did you mean" fixes as code actions.
;;
;;   (require 'mmscn-eglot)
;;   (add-hook 'mmscn-mode-hook #'eglot-ensure)   ; or M-x eglot in a .mmscn buffer
;;
;; The server is `mmscn-program' (mmscn-mode.el) with `mmscn-lsp-arguments'.

;;; Code:

(require 'eglot)
(require 'mmscn-mode)

(defcustom mmscn-lsp-arguments '("lsp")
  "Arguments of `mmscn-program' that start the language server."
  :type '(repeat string)
  :group 'mmscn)

(defcustom mmscn-lsp-settings nil
  "The `mmscn' settings sent to the server, as a plist.
For example (:inlayHints :json-false :explore (:maxSeconds 30))."
  :type 'plist
  :group 'mmscn)

(defun mmscn-eglot-contact (&optional _interactive)
  "The command Eglot starts for an mmscn buffer, with `mmscn-lsp-settings'."
  (append (cons mmscn-program mmscn-lsp-arguments)
          (when mmscn-lsp-settings
            (list :initializationOptions (list :mmscn mmscn-lsp-settings)))))

(add-to-list 'eglot-server-programs '(mmscn-mode . mmscn-eglot-contact))

(provide 'mmscn-eglot)
;;; mmscn-eglot.el ends here
