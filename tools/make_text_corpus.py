"""Build nanofn's embedded text corpus: the docstrings of Python's standard library.

The GPT example (`examples/gpt.py`) trains on English prose about programming that ships
inside the package, so nothing downloads at run time. The text is every module, class
and function docstring of the pure-Python standard library modules listed below, read
with `ast` (nothing is imported or run), dedented, in a fixed order. Python is
distributed under the PSF License Agreement, a permissive licence; its text is copied
next to the corpus (nanofn/data/STDLIB_DOCSTRINGS_LICENSE.txt).

    python tools/make_text_corpus.py     # rewrites nanofn/data/stdlib_docstrings.txt.gz
"""

import ast
import gzip
import os
import pathlib
import sys
import sysconfig

MODULES = [
    "argparse", "ast", "asyncio/base_events", "asyncio/events", "asyncio/tasks", "base64",
    "bisect", "calendar", "cmd", "codecs", "collections/__init__", "configparser",
    "contextlib", "copy", "csv", "dataclasses", "datetime", "decimal", "_pydecimal", "difflib",
    "doctest", "email/message", "email/utils", "enum", "fnmatch", "fractions", "ftplib",
    "functools", "getopt", "gettext", "glob", "gzip", "hashlib", "heapq", "hmac",
    "html/parser", "http/client", "http/cookiejar", "http/server", "imaplib", "inspect",
    "ipaddress", "json/__init__", "json/decoder", "json/encoder", "locale", "logging/__init__",
    "logging/handlers", "mailbox", "mimetypes", "multiprocessing/pool", "netrc", "ntpath",
    "numbers", "operator", "optparse", "os", "pathlib", "pdb", "pickle", "pkgutil",
    "platform", "plistlib", "poplib", "posixpath", "pprint", "profile", "pstats",
    "queue", "random", "re/__init__", "reprlib", "sched", "secrets", "selectors", "shelve",
    "shlex", "shutil", "smtplib", "socket", "socketserver", "statistics", "string",
    "subprocess", "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize",
    "trace", "traceback", "turtle", "typing", "unittest/case", "unittest/mock",
    "urllib/parse", "urllib/request", "uuid", "warnings", "wave", "weakref", "webbrowser",
    "xml/dom/minidom", "zipfile", "zipimport",
]

HERE = pathlib.Path(__file__).resolve().parents[1] / "nanofn" / "data"


def docstrings(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc and len(doc) >= 40:
                yield doc.strip()


def main():
    lib = pathlib.Path(sysconfig.get_paths()["stdlib"])
    parts = []
    for name in MODULES:
        path = lib / f"{name}.py"
        if path.exists():
            parts.extend(docstrings(path))
    text = "\n\n".join(parts) + "\n"
    text = text.encode("ascii", "replace").decode("ascii")  # bytes 0-127: a byte vocabulary
    with gzip.GzipFile(HERE / "stdlib_docstrings.txt.gz", "wb", mtime=0) as f:
        f.write(text.encode("ascii"))
    license_src = lib / "LICENSE.txt"
    header = (f"The text in stdlib_docstrings.txt.gz is the docstrings of Python "
              f"{sys.version.split()[0]}'s standard library\n(the modules listed in "
              "tools/make_text_corpus.py), distributed under this licence:\n\n")
    (HERE / "STDLIB_DOCSTRINGS_LICENSE.txt").write_text(header + license_src.read_text())
    print(f"{len(parts)} docstrings, {len(text):,} bytes, "
          f"{os.path.getsize(HERE / 'stdlib_docstrings.txt.gz'):,} bytes gzipped")


if __name__ == "__main__":
    main()
