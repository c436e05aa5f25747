"""Static ES module imports in JavaScript cells (PROTOCOL.md, "JavaScript"):
built-ins, relative paths, CommonJS packages and ESM-only packages from the
working directory's node_modules."""

import json

import pytest


@pytest.fixture
def packages(tmp_path):
    """An ESM-only and a CommonJS package in tmp_path/node_modules, a local module."""
    esm = tmp_path / "node_modules" / "esm-only"
    esm.mkdir(parents=True)
    (esm / "package.json").write_text(json.dumps(
        {"name": "esm-only", "type": "module", "exports": {".": {"import": "./index.js"}, "./extra": "./extra.js"}}))
    (esm / "index.js").write_text("export const hello = 'esm'; export default 42;\n")
    (esm / "extra.js").write_text("export const extra = 'sub';\n")
    cjs = tmp_path / "node_modules" / "cjs-pkg"
    cjs.mkdir(parents=True)
    (cjs / "package.json").write_text(json.dumps({"name": "cjs-pkg", "main": "main.js"}))
    (cjs / "main.js").write_text("module.exports = { value: 'cjs' };\n")
    (tmp_path / "local.mjs").write_text("export const local = 7;\n")
    return tmp_path


def ok(execution):
    assert execution.status == "ok", execution.events
    return execution


def test_static_imports_of_every_form(start, packages):
    runner = start("javascript")
    execution = ok(runner.run(
        "import { readFileSync } from 'fs'\n"
        "import * as path from 'node:path'\n"
        "import def, { hello as greeting } from 'esm-only'\n"
        "import { extra } from 'esm-only/extra'\n"
        "import cjs from 'cjs-pkg'\n"
        "import { local } from './local.mjs'\n"
        "import 'node:os'\n"
        "[typeof readFileSync, path.sep, def, greeting, extra, cjs.value, local].join(' ')"))
    assert execution.main_result["text"] == "function / 42 esm sub cjs 7"
    # the imported names are globals later cells see, as a REPL's
    assert ok(runner.run("[def, greeting, local, readFileSync('local.mjs', 'utf8').length]")) \
        .main_result["text"] == "[ 42, 'esm', 7, 24 ]"


def test_imports_keep_line_numbers(start, packages):
    execution = start("javascript").run("import {\n  hello,\n} from 'esm-only'\nthrow new Error(hello)")
    assert execution.error["value"] == "esm"
    assert "cell-1:4:" in execution.error["traceback"]


def test_a_missing_package_says_where_it_was_looked_for(start, tmp_path):
    execution = start("javascript").run("import missing from 'no-such-package'")
    assert execution.status == "error"
    assert execution.error["value"] == (f"Cannot find package 'no-such-package' imported from {tmp_path} "
                                        "(install it there: npm install no-such-package)")


def test_import_like_text_is_not_rewritten(start):
    runner = start("javascript")
    assert ok(runner.run("const s = 'import x from \"y\"'; s")).main_result["text"] == 'import x from "y"'
    assert ok(runner.run("(await import('node:path')).sep")).main_result["text"] == "/"


def test_a_malformed_import_is_a_syntax_error(start):
    execution = start("javascript").run("import { from 'x'")
    assert execution.status == "error"
    assert execution.error["name"] == "SyntaxError"
