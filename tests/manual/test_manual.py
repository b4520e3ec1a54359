"""The manual and the man pages cannot drift from the code: every command
has a current man page whose hand-written part names only options that
exist, `--help` points to it, the topic table lists exactly the registered
message types, and every shell example that can run on one machine runs."""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from testbus import ROOT

sys.path.insert(0, str(ROOT / "docs"))
import manpages  # noqa: E402

COMMANDS = manpages.commands()


def test_every_command_has_a_current_man_page() -> None:
    assert manpages.main(["--check"]) == 0, "run python docs/manpages.py"
    assert sorted(p.stem for p in (ROOT / "man").glob("*.1")) == sorted(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_hand_written_part_names_only_options_that_exist(name: str) -> None:
    text = (ROOT / "docs" / "man" / f"{name}.txt").read_text()
    assert "[DESCRIPTION]" in text and "[EXAMPLES]" in text
    named = {"--" + m.replace("\\-", "-") for m in re.findall(r"\\-\\-((?:[a-z0-9]|\\-)+)", text)}
    parsers = manpages.parsers(name, COMMANDS[name])
    known = set().union(*(manpages.option_strings(p) for p in parsers))
    # Options of other programs quoted in an example line (git push, gpg) are not ours.
    other = r"(?<![-\\])\b(git|gpg|tail|pip|systemctl)\s[^\n]*"
    ours = {o for o in named if not re.search(other + re.escape(o.replace("-", "\\-")), text)}
    assert ours <= known, f"{name}: {sorted(ours - known)} named in docs/man/{name}.txt but not an option"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_man_page_renders_without_warnings(name: str) -> None:
    done = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", str(ROOT / "man" / f"{name}.1")],
                          capture_output=True, text=True, env={**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8"},
                          timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert "DESCRIPTION" in done.stdout and "EXAMPLES" in done.stdout and "OPTIONS" in done.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_ends_with_a_pointer_to_the_man_page(name: str) -> None:
    module, function = COMMANDS[name].split(":")
    main = getattr(__import__(module, fromlist=[function]), function)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    assert out.getvalue().rstrip().endswith(f"See {name}(1) and the manual for more."), out.getvalue()[-300:]


def test_topic_table_lists_exactly_the_registered_message_types(built_manual: Path) -> None:
    from debpulse.emitters.messages import registered

    page = (built_manual / "bus.html").read_text()
    table = page[page.index("published by"):]
    table = table[:table.index("</table>")]
    listed = re.findall(r'<tr class="row-(?:odd|even)"><td><p><code[^>]*><span class="pre">([^<]+)</span>', table)
    assert sorted(listed) == sorted(registered()), (listed, sorted(registered()))


# -- the shell examples -----------------------------------------------------------

def examples() -> list[tuple[str, int, str, str | None, list[str]]]:
    """(file, line, script, why it is not run, the output it shows) for each
    ```sh block of the manual; the output is a plain ``` block right after it."""
    files = sorted(ROOT.glob("docs/**/*.md")) + sorted(ROOT.glob("deploy/*.md"))
    out = []
    for path in files:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line.strip() == "```sh":
                end = next(j for j in range(i + 1, len(lines)) if lines[j].strip().startswith("```"))
                marker = re.match(r"<!-- not run: (.+) -->$", lines[i - 1].strip()) if i else None
                shown: list[str] = []
                if end + 2 < len(lines) and not lines[end + 1].strip() and lines[end + 2].strip() == "```":
                    stop = next(j for j in range(end + 3, len(lines)) if lines[j].strip().startswith("```"))
                    shown = [x.strip() for x in lines[end + 3:stop] if x.strip()]
                out.append((str(path.relative_to(ROOT)), i + 1, textwrap.dedent("\n".join(lines[i + 1:end])),
                            marker.group(1) if marker else None, shown))
    return out


def shown_pattern(line: str) -> re.Pattern[str]:
    """A line of shown output, with its times and fingerprints as wildcards."""
    text = re.escape(line)
    text = re.sub(r"\d\d:\d\d:\d\d", r"\\d\\d:\\d\\d:\\d\\d", text)
    text = re.sub(r"[0-9A-F]{8}", "[0-9A-F]{8}", text)
    return re.compile(text)


def test_every_example_runs_or_says_why_not() -> None:
    found = examples()
    assert found
    for where, line, _, reason, _ in found:
        assert reason is None or len(reason) > 10, f"{where}:{line}: say why it is not run"


RUN = [(w, n, s, shown) for w, n, s, why, shown in examples() if why is None]


@pytest.mark.parametrize(("where", "line", "script", "shown"), RUN, ids=[f"{w}:{n}" for w, n, _, _ in RUN])
def test_example_runs(where: str, line: int, script: str, shown: list[str]) -> None:
    """As a newcomer would type it, in a shell, with a state, runtime and
    configuration of its own, until what the manual shows has been printed;
    what it leaves running is stopped after."""
    with tempfile.TemporaryDirectory(prefix="example-") as tmp:
        config = Path(tmp) / "debpulse.toml"
        config.write_text("")
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
               "DEBPULSE_STATE_DIR": f"{tmp}/state", "DEBPULSE_RUNTIME_DIR": f"{tmp}/run",
               "DEBPULSE_CONFIG": str(config), "HOME": tmp}
        log = Path(tmp) / "output"
        with open(log, "w") as fh:
            # Its own session: what the example starts in the background goes with it.
            proc = subprocess.Popen(["bash", "-e", "-c", script], cwd=ROOT, env=env, start_new_session=True,
                                    stdout=fh, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=300)
            patterns = [shown_pattern(x) for x in shown]
            deadline = time.monotonic() + 60
            while not all(p.search(log.read_text()) for p in patterns) and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        out = log.read_text()
        assert proc.returncode == 0, f"{where}:{line} exited {proc.returncode}:\n{out[-3000:]}"
        assert "Traceback" not in out, out[-3000:]
        for pattern in [shown_pattern(x) for x in shown]:
            assert pattern.search(out), f"{where}:{line}: the manual shows {pattern.pattern!r}; got:\n{out[-3000:]}"
