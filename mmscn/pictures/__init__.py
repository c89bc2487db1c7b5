"""Pictures and views of what a scenario did, each behind one entry function.

* record.run_timeline(sc, lines, arch) / record.witness_timeline(model, res):
  a Timeline, the column-per-statement record every picture draws
  (record.record_run also gives the state after every statement or one line);
* svg.svg(timeline, prefix="", full=False) -> str: the per-CPU timeline as SVG (a long
  run's middle folded into counts unless ``full``); svg.RunSvg and svg.ExploreSvg are
  its formats in mmscn/formats.py's registry (`run --svg`, `mmscn draw`, `explore --svg`);
* dot.dot(model, ...) -> str: the explored state graph for Graphviz;
* html.html_report(outcomes, seconds) -> str: the page of a `mmscn test` suite;
* state.state_text(state) -> str: the full state (`mmscn run --state-at LINE`);
* explain.first_failures_text(...), explain.trace_diff(...), explain.diff_text(...):
  what `mmscn compare` says under its table and with `--diff A,B`;
* schema.SCHEMA_PATH: the JSON Schema of every `--json` document.

`mmscn draw` (command.py) is the command line.  Nothing here is imported by
`mmscn` at start-up except command.py, which imports only the standard library.
"""
