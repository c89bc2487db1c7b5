"""The exit statuses of every `mmscn` command, in one place (the commands import them).

0 everything held, 1 an assertion, an invariant, a `final` condition or an
expectation failed or a statement was refused, 2 a file could not be read or
parsed, or the command line was wrong, 3 (`mmscn explore`) the search stopped
before it could decide, `mmscn bisect`: 0 the verdict changes in the range,
1 it never changes; 70 (EX_SOFTWARE) an internal error of mmscn: a
one-line message instead of a traceback (MMSCN_DEBUG=1 shows the traceback),
130 interrupted (Ctrl-C).  When standard output is a pipe that closes early
(`mmscn test DIR | head`): the command's own status if it had finished, else
141 (128 + SIGPIPE, as a shell reports a command the pipe killed); never 0
for a failure.
"""
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_INCOMPLETE = 3     # mmscn explore: the search was cut short before it could decide
EXIT_INTERNAL = 70      # EX_SOFTWARE (sysexits.h): a bug in mmscn itself
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_PIPE = 141         # 128 + SIGPIPE: the reader of standard output left before the command finished
