"""The `chart` of a matplotlib figure result, in E2B's shapes (the `Chart` types of
@e2b/code-interpreter: line, scatter, bar, pie, box_and_whisker, superchart,
unknown). Loaded by the Python kernel when it first renders a figure; the figure
has just been drawn (saved as PNG), so tick labels are set.
"""

import math
import re

UNIT = re.compile(r"\s\((.*?)\)|\[(.*?)\]")  # "time (s)" or "time [s]" -> "s"


def figure_chart(figure):
    """The chart of a figure: None without axes, a superchart for several."""
    axes = figure.get_axes()
    if not axes:
        return None
    if len(axes) == 1:
        return axes_chart(axes[0])
    suptitle = getattr(figure, "_suptitle", None)
    return {"type": "superchart", "title": (suptitle.get_text() or None) if suptitle else None,
            "elements": [axes_chart(ax) for ax in axes]}


def axes_chart(ax):
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import PathPatch, Rectangle, Wedge
    from matplotlib.text import Text

    artists = [a for a in children(ax) if not isinstance(a, Text)]
    if all(isinstance(a, (Line2D, PathPatch)) for a in artists):
        boxes = box_elements(ax, artists)
        if boxes is not None:
            return boxes
        if all(isinstance(a, Line2D) for a in artists):
            return point_chart(ax, "line", [
                {"label": series_label(line.get_label(), "_child", "Line"),
                 "points": [[value(x, ax.xaxis), value(y, ax.yaxis)]
                            for x, y in zip(line.get_xdata(), line.get_ydata())]}
                for line in artists if not is_reference_line(ax, line)])
    drawn = [a for a in artists if not (isinstance(a, Line2D) and is_reference_line(ax, a))]
    if drawn and all(isinstance(a, PathCollection) for a in drawn):
        return point_chart(ax, "scatter", [
            {"label": collection.get_label(),
             "points": [[value(x, ax.xaxis, numeric=True), value(y, ax.yaxis, numeric=True)]
                        for x, y in collection.get_offsets()]}
            for collection in drawn])
    if drawn and all(isinstance(a, Wedge) for a in drawn):
        return {"type": "pie", "title": title(ax), "elements": [
            {"label": wedge.get_label(), "angle": abs(round(wedge.theta2 - wedge.theta1, 4)),
             "radius": float(wedge.r)} for wedge in drawn]}
    if drawn and all(isinstance(a, Rectangle) for a in drawn):
        return bar_chart(ax)
    return {"type": "unknown", "title": title(ax), "elements": []}


def children(ax):
    found = getattr(ax, "_children", None)  # matplotlib >= 3.5, in drawing order
    if found is None:
        found = [*ax.lines, *ax.collections, *ax.patches, *ax.texts]
    return list(found)


def title(ax):
    return ax.get_title() or None


def labels_2d(ax, swap=False):
    """title, axis labels and units; `swap`: the category axis is y (barh, vert=False)."""
    labels = [ax.get_xlabel() or None, ax.get_ylabel() or None]
    if swap:
        labels.reverse()
    chart = {"title": title(ax), "x_label": labels[0], "y_label": labels[1]}
    for axis, label in zip("xy", labels):
        match = UNIT.search(label) if label else None
        chart[f"{axis}_unit"] = (match.group(1) or match.group(2)) if match else None
    return chart


def converter_module(axis):
    get = getattr(axis, "get_converter", None)
    converter = get() if callable(get) else getattr(axis, "converter", None)
    return type(converter).__module__ if converter is not None else ""


def scale(axis, ticks, tick_labels):
    module = converter_module(axis)
    if module == "matplotlib.dates":
        return "datetime"
    name = axis.get_scale()
    if name != "linear":
        return name
    if module == "matplotlib.category":
        return "categorical"
    # Ticks 0..n-1 relabelled with names (plt.xticks(range(3), ["a", "b", "c"])).
    if ticks and all(t == i and label != str(i) for i, (t, label) in enumerate(zip(ticks, tick_labels))):
        return "categorical"
    return "linear"


def value(v, axis, numeric=False):
    """A data value as JSON: dates as ISO strings, categories as their names."""
    if isinstance(v, str):
        return v
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if type(v).__name__ == "datetime64":
        return str(v.astype("datetime64[s]"))
    number = float(v)
    if numeric and converter_module(axis) == "matplotlib.dates" and math.isfinite(number):
        import matplotlib.dates
        return matplotlib.dates.num2date(number).isoformat()
    if numeric and converter_module(axis) == "matplotlib.category":
        names = category_names(axis)
        index = round(number)
        if index == number and index in names:
            return names[index]
    return number if math.isfinite(number) else None


def category_names(axis):
    units = getattr(axis, "units", None)
    mapping = getattr(units, "_mapping", None) or {}
    return {int(index): str(name) for name, index in mapping.items()}


def ticks_of(axis):
    ticks = [float(t) for t in axis.get_ticklocs()]
    labels = [label.get_text() for label in axis.get_ticklabels()]
    if converter_module(axis) == "matplotlib.dates":
        import matplotlib.dates
        return [matplotlib.dates.num2date(t).isoformat() for t in ticks], labels, ticks
    return ticks, labels, ticks


def point_chart(ax, kind, elements):
    chart = {"type": kind, **labels_2d(ax)}
    for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
        ticks, labels, numeric_ticks = ticks_of(axis)
        chart[f"{name}_ticks"] = ticks
        chart[f"{name}_tick_labels"] = labels
        chart[f"{name}_scale"] = scale(axis, numeric_ticks, labels)
    chart["elements"] = elements
    return chart


def series_label(label, prefix, name):
    """matplotlib names unlabelled artists `_child3`, `_container0`: "Line 3", "Group 0"."""
    if label.startswith(prefix) and label[len(prefix):].isdigit():
        return f"{name} {label[len(prefix):]}"
    return label


def is_reference_line(ax, line):
    """axhline/axvline: drawn partly in axes coordinates, not data."""
    return line.get_transform() is not ax.transData


def position_label(axis, position):
    """The name of the category or tick at `position`, else the number."""
    names = category_names(axis)
    if round(position) == position and round(position) in names:
        return names[round(position)]
    for tick, label in zip(axis.get_ticklocs(), axis.get_ticklabels()):
        if math.isclose(tick, position, abs_tol=1e-9) and label.get_text():
            return label.get_text()
    return f"{position:g}"


def bar_chart(ax):
    containers = [c for c in ax.containers if hasattr(c, "patches")]
    horizontal = bool(containers) and all(getattr(c, "orientation", "vertical") == "horizontal"
                                          for c in containers)
    chart = {"type": "bar", **labels_2d(ax, swap=horizontal), "elements": []}
    groups = containers or [type("Bars", (), {"patches": ax.patches, "get_label": lambda self: ""})()]
    for container in groups:
        group = series_label(container.get_label() or "", "_container", "Group")
        for rect in container.patches:
            if horizontal:
                position, amount, axis = rect.get_y() + rect.get_height() / 2, rect.get_width(), ax.yaxis
            else:
                position, amount, axis = rect.get_x() + rect.get_width() / 2, rect.get_height(), ax.xaxis
            chart["elements"].append({"label": position_label(axis, position), "group": group,
                                      "value": float(amount)})
    return chart


def rectangle_bounds(artist):
    """(x0, x1, y0, y1) of a box: a PathPatch (patch_artist=True) or a closed
    five-point Line2D (boxplot's default); None for anything else."""
    from matplotlib.lines import Line2D
    if isinstance(artist, Line2D):
        x, y = [float(v) for v in artist.get_xdata(orig=False)], [float(v) for v in artist.get_ydata(orig=False)]
        if len(x) != 5 or (x[0], y[0]) != (x[4], y[4]) or len(set(x)) != 2 or len(set(y)) != 2:
            return None
    else:
        vertices = artist.get_path().vertices
        x, y = [float(v) for v in vertices[:, 0]], [float(v) for v in vertices[:, 1]]
    return min(x), max(x), min(y), max(y)


def box_elements(ax, artists):
    """A boxplot: its boxes, medians, whiskers and fliers; None if it is not one."""
    from matplotlib.lines import Line2D
    boxes, lines = [], []
    for artist in artists:
        bounds = rectangle_bounds(artist)
        if bounds is not None and not (isinstance(artist, Line2D) and artist.get_marker() not in ("None", None, "")):
            boxes.append({"bounds": bounds, "outliers": []})
        elif isinstance(artist, Line2D):
            lines.append(artist)
        else:
            return None
    if not boxes:
        return None
    # The median of a vertical box is horizontal: that tells the orientation.
    vertical = any(len(line.get_ydata(orig=False)) == 2 and line.get_ydata(orig=False)[0] == line.get_ydata(orig=False)[1] and
                   any((b["bounds"][0], b["bounds"][1]) == (min(line.get_xdata(orig=False)), max(line.get_xdata(orig=False)))
                       for b in boxes)
                   for line in lines)
    for box in boxes:
        x0, x1, y0, y1 = box["bounds"]
        box["low"], box["high"], box["lo_box"], box["hi_box"] = (x0, x1, y0, y1) if vertical else (y0, y1, x0, x1)
        box["min"], box["max"] = box["lo_box"], box["hi_box"]
        box["median"] = None
    for line in lines:
        across, along = (line.get_xdata(orig=False), line.get_ydata(orig=False)) if vertical else (line.get_ydata(orig=False), line.get_xdata(orig=False))
        across, along = [float(v) for v in across], [float(v) for v in along]
        if not across:
            continue
        box = next((b for b in boxes if b["low"] <= min(across) and max(across) <= b["high"]), None)
        if box is None:
            continue
        if line.get_linestyle() in ("None", "", " ") and line.get_marker() not in ("None", None, ""):
            box["outliers"].extend(along)  # fliers
        elif len(along) == 2 and along[0] == along[1]:
            if min(across) == box["low"] and max(across) == box["high"]:  # as wide as the box
                box["median"] = along[0]
            else:  # a cap: the whisker's end
                box["min"], box["max"] = min(box["min"], along[0]), max(box["max"], along[0])
        elif len(along) == 2:  # a whisker
            box["min"], box["max"] = min(box["min"], *along), max(box["max"], *along)
    if any(box["median"] is None for box in boxes):
        return None
    category_axis = ax.xaxis if vertical else ax.yaxis
    chart = {"type": "box_and_whisker", **labels_2d(ax, swap=not vertical), "elements": []}
    for box in boxes:
        chart["elements"].append({
            "label": position_label(category_axis, (box["low"] + box["high"]) / 2),
            "min": box["min"], "first_quartile": box["lo_box"], "median": box["median"],
            "third_quartile": box["hi_box"], "max": box["max"], "outliers": box["outliers"]})
    return chart
