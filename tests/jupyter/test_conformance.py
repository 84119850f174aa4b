"""The PyPI conformance suite `jupyter_kernel_test` against the installed `sandwich` kernel,
with every sample attribute set."""

import unittest

import jupyter_kernel_test as jkt


class SandwichKernelTests(jkt.KernelTests):
    kernel_name = "sandwich"
    language_name = "lua"
    file_extension = ".lua"

    code_hello_world = 'print("hello, world")'
    code_stderr = 'io.stderr:write("a warning\\n")'

    completion_samples = [
        {"text": "sw.read_", "matches": {"read_csv", "read_ipc", "read_json", "read_parquet"}},
        {"text": "sw.aggregate.ma", "matches": {"mace", "majority_vote"}},
        {"text": "whi", "matches": {"while"}},
    ]
    complete_code_samples = ["x = 1", "print(1)", "for i = 1, 2 do end", "1 + 2"]
    incomplete_code_samples = ["for i = 1, 2 do", "function f(x)", 'x = "abc', "x = [[long"]
    invalid_code_samples = ["x = = 1", "end end", "local 1x = 2"]

    code_page_something = "sw.read_csv?"
    code_generate_error = 'error("boom")'
    code_execute_result = [
        {"code": "1 + 2", "result": "3"},
        {"code": "sw.frame{x = {1, 2, 3}}:height()", "result": "3"},
    ]
    code_display_data = [
        {"code": 'sw.display.html("<b>hi</b>")', "mime": "text/html"},
        {"code": 'sw.display.markdown("**hi**")', "mime": "text/markdown"},
        {"code": "sw.display(sw.frame{x = {1, 2}})", "mime": "text/html"},
        {
            "code": 'sw.display.vegalite{mark = "point", data = {values = {{x = 1, y = 2}}}, '
            'encoding = {x = {field = "x", type = "quantitative"}}}',
            "mime": "application/vnd.vegalite.v5+json",
        },
    ]
    supported_history_operations = ("tail", "range", "search")
    code_history_pattern = "1 + *"
    code_inspect_sample = "sw.read_csv"
    code_clear_output = "sw.display.clear()"


if __name__ == "__main__":
    unittest.main()
