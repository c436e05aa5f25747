"""TypeScript through the JavaScript kernel: node_runner.js --typescript."""

import os

import pytest

pytestmark = pytest.mark.skipif(not os.path.isdir("/usr/share/nodejs/typescript"),
                                reason="TypeScript not installed (apt-get install node-typescript)")


def test_ready_says_typescript(start):
    runner = start("typescript")
    assert runner.ready["language"] == "typescript"
    assert runner.ready["version"].split(".")[0].isdigit()


def test_types_are_stripped_and_state_persists(start):
    runner = start("typescript")
    execution = runner.run("interface Point { x: number; y?: string }\n"
                           "const p: Point = {x: 1}\n"
                           "enum Color { Red, Green = 5 }\n"
                           "function id<T>(value: T): T { return value }\n"
                           "type Pair<A, B> = [A, B]\n"
                           "const pair: Pair<number, string> = [id<number>(p.x), 'b']\n"
                           "pair[0] + Color.Green")
    assert execution.main_result["text"] == "6", execution.events
    # later cells see the values (and may declare const/let/class again)
    execution = runner.run("const p: Point = {x: 2}\nlet k: number = 3\n"
                           "class Box<T> {\n  constructor(public value: T) {}\n"
                           "  map<U>(f: (v: T) => U): Box<U> { return new Box(f(this.value)) }\n}\n"
                           "abstract class Shape { abstract area(): number }\n"
                           "class Square extends Shape { constructor(private side: number) { super() } "
                           "area() { return this.side ** 2 } }\n"
                           "[new Box(p.x).map(v => v * k).value, Color[5], new Square(3).area(), pair[1]]")
    assert execution.main_result["text"] == "[ 6, 'Green', 9, 'b' ]", execution.events
    assert runner.run("class Box { v = 1 }\nnew Box().v as number").main_result["text"] == "1"


def test_top_level_await_imports_and_exports(start):
    runner = start("typescript")
    execution = runner.run("import fs from 'fs'\nimport * as path from 'path'\n"
                           "import { join as joinPath } from 'path'\nimport type { Stats } from 'fs'\n"
                           "const v: number = await new Promise<number>(r => setTimeout(() => r(7), 1))\n"
                           "export const e: string = 'exported'\nv")
    assert execution.main_result["text"] == "7", execution.events
    execution = runner.run("[typeof fs.readFileSync, path.basename('/a/b'), joinPath('c', 'd'), v, e]")
    assert execution.main_result["text"] == "[ 'function', 'b', 'c/d', 7, 'exported' ]", execution.events


def test_syntax_error_is_a_syntax_error_event(start):
    runner = start("typescript")
    execution = runner.run("const ok = 1\nlet x: number = ;")
    assert execution.status == "error"
    error = execution.error
    assert error["name"] == "SyntaxError"
    assert "Expression expected" in error["value"] and "TS1109" in error["value"]
    assert error["traceback"].startswith("cell-1:2\nlet x: number = ;\n                ^")
    assert runner.run("typeof ok").main_result["text"] == "undefined"  # nothing of the cell ran


def test_runtime_error_positions_are_those_of_the_typescript(start):
    runner = start("typescript")
    execution = runner.run("interface I {\n  a: number\n}\n\nfunction f(n: number): number {\n"
                           "  throw new TypeError('bad ' + n)\n}\n\n\nf(3)")
    error = execution.error
    assert (error["name"], error["value"]) == ("TypeError", "bad 3")
    assert "at f (cell-1:6:" in error["traceback"]
    assert "at cell-1:10:" in error["traceback"]


def test_type_errors_are_not_checked(start):
    # transpileModule strips types without checking them, as ts-node --transpile-only
    assert start("typescript").run("const s: number = 'text' as any as number\ns").main_result["text"] == "text"


def test_output_and_interrupt_work_as_in_javascript(start):
    runner = start("typescript")
    assert runner.run("console.log('hi' as string)").stdout == "hi\n"
    request_id = runner.start("let n: number = 0\nconsole.log('started')\nwhile (true) { n++ }")
    runner.wait_event(lambda e: e.get("text") == "started\n")
    runner.interrupt()
    execution = runner.collect(request_id)
    assert execution.status == "interrupted"
    assert runner.run("typeof n").main_result["text"] == "number"
