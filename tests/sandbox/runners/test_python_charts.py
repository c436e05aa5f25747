"""The `chart` of matplotlib figure results (E2B's Chart shapes), one test per
chart type, through the Python kernel."""

import importlib.util

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                                reason="matplotlib not installed (apt-get install python3-matplotlib)")
PLT = "import matplotlib.pyplot as plt\n"


@pytest.fixture(scope="module")
def chart_of(tmp_path_factory):
    """chart_of(code) -> the chart of the one figure the code shows."""
    from harness import Runner
    runner = Runner("python", tmp_path_factory.mktemp("charts"))
    ok = runner.run(PLT + "plt.plot([1])\nplt.show()", timeout=60)  # matplotlib's import, once
    assert ok.status == "ok", ok.events

    def run(code):
        execution = runner.run(PLT + code + "\nplt.show()", timeout=30)
        assert execution.status == "ok", execution.events
        [figure] = execution.results
        assert figure["png"] and figure["is_main_result"] is False
        return figure.get("chart")

    yield run
    runner.close()


def test_line(chart_of):
    chart = chart_of('plt.plot([1, 2, 3], [1, 4, 9], label="squares")\nplt.plot([1, 2, 3], [2, 2, 2])\n'
                     'plt.title("Growth"); plt.xlabel("time (s)"); plt.ylabel("size [m]")')
    assert {k: chart[k] for k in ("type", "title", "x_label", "y_label", "x_unit", "y_unit",
                                  "x_scale", "y_scale")} == {
        "type": "line", "title": "Growth", "x_label": "time (s)", "y_label": "size [m]",
        "x_unit": "s", "y_unit": "m", "x_scale": "linear", "y_scale": "linear"}
    assert chart["elements"] == [{"label": "squares", "points": [[1, 1], [2, 4], [3, 9]]},
                                 {"label": "Line 1", "points": [[1, 2], [2, 2], [3, 2]]}]
    assert 1.0 in chart["x_ticks"] and len(chart["x_ticks"]) == len(chart["x_tick_labels"])
    assert "1.00" in chart["x_tick_labels"]


def test_line_scales(chart_of):
    dates = chart_of("import datetime\nplt.plot([datetime.date(2024, 1, d) for d in (1, 2, 3)], [1, 2, 3])")
    assert dates["x_scale"] == "datetime"
    assert dates["elements"][0]["points"][0] == ["2024-01-01", 1]
    assert dates["x_ticks"][0].startswith("2024-01-01T")
    assert chart_of('plt.plot([1, 10, 100], [1, 10, 100]); plt.yscale("log")')["y_scale"] == "log"
    categories = chart_of('plt.plot(["a", "b", "c"], [3, 1, 2])')
    assert categories["x_scale"] == "categorical"
    assert categories["x_tick_labels"] == ["a", "b", "c"]
    assert categories["elements"][0]["points"] == [["a", 3], ["b", 1], ["c", 2]]
    relabelled = chart_of('plt.plot([0, 1, 2], [5, 6, 7]); plt.xticks([0, 1, 2], ["x", "y", "z"])')
    assert relabelled["x_scale"] == "categorical"


def test_axhline_is_not_a_series(chart_of):
    chart = chart_of("plt.plot([1, 2], [3, 4]); plt.axhline(3.5)")
    assert [e["label"] for e in chart["elements"]] == ["Line 0"]


def test_scatter(chart_of):
    chart = chart_of('plt.scatter([1, 2, 3], [4, 5, 6], label="pts"); plt.title("S")')
    assert (chart["type"], chart["title"]) == ("scatter", "S")
    assert chart["elements"] == [{"label": "pts", "points": [[1, 4], [2, 5], [3, 6]]}]
    assert chart["x_scale"] == chart["y_scale"] == "linear"


def test_bar(chart_of):
    chart = chart_of('plt.bar(["apples", "pears"], [3, 5], label="2023")\n'
                     'plt.bar(["apples", "pears"], [1, 2], bottom=[3, 5])\nplt.ylabel("count (kg)")')
    assert (chart["type"], chart["y_label"], chart["y_unit"]) == ("bar", "count (kg)", "kg")
    assert chart["elements"] == [
        {"label": "apples", "group": "2023", "value": 3}, {"label": "pears", "group": "2023", "value": 5},
        {"label": "apples", "group": "Group 1", "value": 1}, {"label": "pears", "group": "Group 1", "value": 2}]


def test_horizontal_bar_puts_the_categories_on_x(chart_of):
    chart = chart_of('plt.barh(["x", "y"], [7, 8]); plt.xlabel("weight")')
    assert (chart["type"], chart["x_label"], chart["y_label"]) == ("bar", None, "weight")
    assert [(e["label"], e["value"]) for e in chart["elements"]] == [("x", 7), ("y", 8)]


def test_pie(chart_of):
    chart = chart_of('plt.pie([1, 3], labels=["one", "three"]); plt.title("P")')
    assert chart == {"type": "pie", "title": "P", "elements": [
        {"label": "one", "angle": 90, "radius": 1}, {"label": "three", "angle": 270, "radius": 1}]}


def test_box_and_whisker(chart_of):
    chart = chart_of('plt.boxplot([[1, 2, 3, 4, 5, 20], [2, 3, 4, 5, 6]], labels=["A", "B"])\n'
                     'plt.ylabel("value")')
    assert (chart["type"], chart["y_label"]) == ("box_and_whisker", "value")
    assert chart["elements"] == [
        {"label": "A", "min": 1, "first_quartile": 2.25, "median": 3.5, "third_quartile": 4.75,
         "max": 5, "outliers": [20]},
        {"label": "B", "min": 2, "first_quartile": 3, "median": 4, "third_quartile": 5,
         "max": 6, "outliers": []}]
    horizontal = chart_of("plt.boxplot([[1, 2, 3, 4, 5]], vert=False, patch_artist=True)")
    assert horizontal["elements"] == [{"label": "1", "min": 1, "first_quartile": 2, "median": 3,
                                       "third_quartile": 4, "max": 5, "outliers": []}]


def test_superchart(chart_of):
    chart = chart_of('fig, (a, b) = plt.subplots(1, 2)\na.plot([1, 2]); a.set_title("left")\n'
                     'b.pie([1, 1])\nfig.suptitle("Both")')
    assert (chart["type"], chart["title"]) == ("superchart", "Both")
    assert [(e["type"], e["title"]) for e in chart["elements"]] == [("line", "left"), ("pie", None)]


def test_unknown(chart_of):
    chart = chart_of("import numpy as np\nplt.imshow(np.eye(3))")
    assert chart == {"type": "unknown", "title": None, "elements": []}


def test_a_figure_without_axes_has_no_chart(chart_of):
    assert chart_of("plt.figure()") is None
