"""The README and docs/ as written: every command runs as written (its script exists, its flags
parse with the tool's own parser, its --config-file loads with its KEY VALUE overrides, its make
target exists), every file, module and link they name exists, every page has its contents list,
and the front page keeps the two commands (a CI hook greps for them)."""

import argparse
import glob
import importlib
import importlib.util
import itertools
import os
import re
import shlex
import sys
from unittest import mock

import pytest

from insloc.config import load_config

from .conftest import ROOT

PAGES = ["README.md"] + sorted(
    os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md"))
)


def _text(page: str) -> str:
    with open(os.path.join(ROOT, page)) as f:
        return f.read()


def _commands(page: str) -> list:
    """The commands of a page: the lines of its ```bash blocks (continuations joined, comments
    dropped) and its inline `python ...` spans that are not usage summaries."""
    text = _text(page)
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                found.append(line)
    for span in re.findall(r"`(python [^`]+)`", text):
        if not any(mark in span for mark in ("[", "...", "<")):
            found.append(span)
    return found


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: str) -> set:
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", _text(page), re.M)}


class _Parsed(Exception):
    """Raised with the namespace once a tool's parser has read its command line."""


def _capture(method):
    def parse(self, *args, **kwargs):
        raise _Parsed(method(self, *args, **kwargs))

    return parse


def _parse(script: str, argv: list) -> argparse.Namespace:
    """The namespace ``script``'s own parser makes of ``argv`` (nothing past the parse runs)."""
    spec = importlib.util.spec_from_file_location("doc_" + os.path.basename(script)[:-3], script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    patches = [
        mock.patch.object(
            argparse.ArgumentParser, name, _capture(getattr(argparse.ArgumentParser, name))
        )
        for name in ("parse_args", "parse_intermixed_args")
    ]
    with patches[0], patches[1], mock.patch.object(sys, "argv", [script, *argv]):
        try:
            module.main(argv) if "argv" in module.main.__code__.co_varnames else module.main()
        except _Parsed as parsed:
            return parsed.args[0]
    raise AssertionError(f"{script} did not parse its command line")


def _make_targets() -> set:
    return set(re.findall(r"^([\w-]+):", _text("Makefile"), re.M))


def test_the_front_page_keeps_the_two_commands_and_links_every_page():
    readme = _text("README.md")
    assert "make demo" in readme and "make test" in readme
    for page in PAGES[1:]:
        assert f"({page})" in readme, f"README.md does not link {page}"


@pytest.mark.parametrize("page", PAGES[1:])
def test_every_docs_page_has_a_contents_list(page):
    assert re.search(r"^Contents: \[", _text(page), re.M), f"{page} has no 'Contents:' list"


@pytest.mark.parametrize("page", PAGES)
def test_links_files_and_modules_exist(page):
    text, folder = _text(page), os.path.dirname(os.path.join(ROOT, page))
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(folder, path)) if path else os.path.join(ROOT, page)
        assert os.path.exists(full), f"{page}: link to a missing {target}"
        if anchor:
            assert anchor in _anchors(os.path.relpath(full, ROOT)), f"{page}: no anchor {target}"
    # repository paths, with {a,b} alternatives expanded
    for name in re.findall(
        r"(?<![\w/.])((?:tools|benchmarks|configs|insloc|dense_match|tests|docs)/[\w/{},.*-]*\w)",
        text,
    ):
        parts = re.split(r"\{([^}]*)\}", name)
        choices = [p.split(",") if i % 2 else [p] for i, p in enumerate(parts)]
        for combo in itertools.product(*choices):
            path = "".join(combo)
            assert glob.glob(os.path.join(ROOT, path)), f"{page}: names a missing {path}"
    # dotted names of insloc's and dense_match's modules and their attributes
    for name in set(re.findall(r"\b((?:insloc|dense_match)(?:\.\w+)+)", text)):
        parts = name.split(".")
        if parts[-1] in ("py", "md", "yaml", "json", "txt"):
            continue  # a file name (insloc.py)
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
                break
            except ImportError:
                continue
        for attr in parts[i:]:
            assert hasattr(obj, attr), f"{page}: names {name}, which does not exist"
            obj = getattr(obj, attr)


@pytest.mark.parametrize("page", PAGES)
def test_every_command_runs_as_written(page, capsys):
    for command in _commands(page):
        words = shlex.split(command)
        if words[0] == "make":
            assert words[1] in _make_targets(), f"{page}: make {words[1]} is not a target"
            continue
        scripts = [i for i, w in enumerate(words) if re.match(r"(tools|benchmarks)/\w+\.py$", w)]
        if not scripts:
            continue  # pip, pytest ...
        i = scripts[0]
        script = os.path.join(ROOT, words[i])
        assert os.path.isfile(script), f"{page}: {words[i]} does not exist"
        try:
            args = _parse(script, words[i + 1 :])
        except SystemExit as e:
            raise AssertionError(f"{page}: {command}\n{capsys.readouterr().err}") from e
        config = getattr(args, "config_file", "")
        if config and getattr(args, "engine", "insloc") == "insloc" and config.endswith(".yaml"):
            assert os.path.isfile(os.path.join(ROOT, config)), f"{page}: {config} does not exist"
            load_config(os.path.join(ROOT, config), args.opts)  # its keys and values are valid
