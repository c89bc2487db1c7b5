"""Loading a scenario file for a command: the file's errors printed, located, once."""
from __future__ import annotations

from mmscn.dsl.diagnostics import plural, printable, read_error


def load(path: str, err, color: bool, arch=None, ps=None):
    """(scenario, text) or None after printing why the file cannot be used (a trace is imported first).
    ``arch`` is the architecture the command will use when it overrides the file's."""
    from mmscn.dsl.parser import ParseFailed
    from mmscn.dsl.resolve import load as load_text, load_file
    from mmscn.interpreter.arches import known_arches
    from mmscn.traces import TraceError, scenario_text
    try:
        text = scenario_text(path, ps)      # None: not a kernel trace
        if text is not None:
            return load_text(text, path, known_arches(), arch), text
        return load_file(path, known_arches(), arch)
    except TraceError as e:
        err.write(e.render() + "\n")
    except ParseFailed as e:
        for d in e.diagnostics:
            err.write(d.render(color) + "\n")
        n = len(e.diagnostics)
        err.write(f"{printable(path)}: {plural(n, 'error')}\n")
    except OSError as e:
        err.write(f"mmscn: {printable(path)}: {read_error(e)}\n")
    return None
