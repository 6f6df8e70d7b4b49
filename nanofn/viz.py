"""Pictures of programs: a jaxpr drawn as a graph.

`to_dot` turns a jaxpr into Graphviz DOT text (plain text, no dependency): one box per
equation, one oval per input, constant and output, and an edge per value labelled with
its shape and dtype. Control flow (`scan`, `cond`, `while_loop`, ...) draws its inner
programs as nested clusters; an equation of jit's fused program (`fused_elementwise`)
is one box listing the operations its generated kernel runs.

`render` writes SVG or PNG through the `graphviz` Python package and the `dot` program
(the optional extra `nanofn[viz]`); without them, write the DOT text to a file and use
any Graphviz viewer.

The three programs people ask to see:

    >>> import nanofn, nanofn.numpy as fnp
    >>> from nanofn import viz
    >>> f = lambda x: fnp.sum(fnp.tanh(x) ** 2)
    >>> x = fnp.ones(3)
    >>> dot = viz.to_dot(nanofn.make_jaxpr(f)(x))                  # what f traces to
    >>> dot = viz.to_dot(nanofn.make_jaxpr(nanofn.grad(f))(x))     # what grad made of it
    >>> dot = viz.to_dot(viz.jit_program(f, x))                    # what jit runs (fused)
    >>> dot.splitlines()[0]
    'digraph jaxpr {'
"""

from __future__ import annotations

import html

from nanofn._core import ClosedJaxpr, Jaxpr, Literal

__all__ = ["to_dot", "render", "jit_program", "plot_curves"]

_FONT = 'fontname="Helvetica"'


def jit_program(fun, *args, fused: bool = True, **kwargs) -> ClosedJaxpr:
    """The program `jit(fun)` runs for these arguments: the traced jaxpr after jit's
    simplification and, with `fused=True`, with elementwise chains fused into kernels.

    Args:
        fun: a Python function or a `jit`-wrapped one.
        *args, **kwargs: example arguments (arrays or anything with shapes and dtypes).
        fused: also apply kernel fusion (what runs from the second call on).

    Example:
        >>> import nanofn.numpy as fnp
        >>> from nanofn import viz
        >>> p = viz.jit_program(lambda x: fnp.exp(x) * 2 + 1, fnp.ones(4))
        >>> [e.primitive.name for e in p.eqns]
        ['fused_elementwise']
    """
    from nanofn._jit import JitFunction, jit

    jf = fun if isinstance(fun, JitFunction) else jit(fun)
    closed = jf.lower(*args, **kwargs).compiler_ir()  # the simplified jaxpr
    if fused:
        from nanofn._fusion import fuse
        closed = fuse(closed)
    return closed


def _params_label(eqn) -> str:
    shown = []
    for k, v in sorted(eqn.params.items()):
        if v is None or isinstance(v, (Jaxpr, ClosedJaxpr)) or k in ("program", "kernel_key"):
            continue
        if isinstance(v, (list, tuple)) and any(isinstance(e, (Jaxpr, ClosedJaxpr)) for e in v):
            continue
        text = str(v)
        if len(text) > 24:
            text = text[:21] + "..."
        shown.append(f"{k}={text}")
    return "\n".join(shown)


def _inner_jaxprs(eqn):
    for k, v in sorted(eqn.params.items()):
        vs = v if isinstance(v, (list, tuple)) else [v]
        for i, e in enumerate(vs):
            if isinstance(e, ClosedJaxpr):
                e = e.jaxpr
            if isinstance(e, Jaxpr):
                yield (k if len(vs) == 1 else f"{k}[{i}]"), e


def _label(*lines) -> str:
    """A DOT label: lines joined by newlines, quotes escaped."""
    text = "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
                      for line in lines if line)
    return f'"{text}"'


class _Writer:
    def __init__(self):
        self.lines: list[str] = []
        self.count = 0
        self.names: dict[int, str] = {}

    def node(self, label, **attrs) -> str:
        self.count += 1
        name = f"n{self.count}"
        extra = "".join(f", {k}={v}" for k, v in attrs.items())
        self.lines.append(f"  {name} [label={label}{extra}];")
        return name

    def edge(self, src, dst, aval):
        self.lines.append(f'  {src} -> {dst} [label="{aval.str_short()}", {_FONT}, fontsize=9];')

    def jaxpr(self, jaxpr: Jaxpr, prefix: str, consts=None):
        """Draw `jaxpr`'s body; return the nodes of its inputs and outputs."""
        ins = []
        for i, v in enumerate(jaxpr.constvars):
            shown = ""
            if consts is not None and i < len(consts):
                shown = "const"
            self.names[id(v)] = self.node(_label(f"{prefix}c{i}", shown, v.aval.str_short()),
                                          shape="note", style="filled", fillcolor='"#eeeeee"')
        for i, v in enumerate(jaxpr.invars):
            self.names[id(v)] = n = self.node(_label(f"{prefix}in{i}"), shape="ellipse",
                                              style="filled", fillcolor='"#d8ecff"')
            ins.append(n)
        for eqn in jaxpr.eqns:
            self.equation(eqn)
        outs = []
        for i, v in enumerate(jaxpr.outvars):
            n = self.node(_label(f"{prefix}out{i}"), shape="ellipse", style="filled",
                          fillcolor='"#dff5d8"')
            self.connect(v, n)
            outs.append(n)
        return ins, outs

    def connect(self, x, dst):
        if isinstance(x, Literal):
            src = self.node(_label(str(x.val)), shape="plaintext")
            self.edge(src, dst, x.aval)
        else:
            self.edge(self.names[id(x)], dst, x.aval)

    def equation(self, eqn):
        name = eqn.primitive.name
        inner = list(_inner_jaxprs(eqn))
        if name == "fused_elementwise":
            program = eqn.params["program"]
            ops = [op[0] for op in program.ops]
            body = ops if len(ops) <= 12 else ops[:11] + [f"... ({len(ops)} ops)"]
            label = _label("fused kernel", *body)
            n = self.node(label, shape="box", style='"rounded,filled"', fillcolor='"#ffe7c2"')
        elif inner:
            self.count += 1
            cluster = f"cluster_{self.count}"
            self.lines.append(f"  subgraph {cluster} {{")
            self.lines.append(f"  label={_label(name, _params_label(eqn))}; style=dashed;")
            n = self.node(_label(name), shape="box", style="bold")
            for key, sub in inner:
                self.lines.append(f"  subgraph cluster_{self.count + 1} {{ label={_label(key)};")
                self.count += 1
                self.jaxpr(sub, prefix=f"{key}.")
                self.lines.append("  }")
            self.lines.append("  }")
        else:
            n = self.node(_label(name, _params_label(eqn)), shape="box")
        for x in eqn.invars:
            self.connect(x, n)
        if len(eqn.outvars) == 1:
            self.names[id(eqn.outvars[0])] = n
        else:  # one small point per output, so edges show each output's type
            for i, v in enumerate(eqn.outvars):
                p = self.node(_label(f"{i}"), shape="circle", width="0.2", fontsize="8")
                self.edge(n, p, v.aval)
                self.names[id(v)] = p


def to_dot(program, *, title: str | None = None) -> str:
    """Graphviz DOT text for a jaxpr (from `make_jaxpr`, `jit_program`, or a `Jaxpr`).

    Inputs are blue ovals, outputs green, constants grey notes; each equation is a box
    with its primitive and parameters, fused kernels are orange boxes listing their
    operations, and control flow draws its inner programs as dashed clusters. Every edge
    is labelled with the value's shape and dtype (`f32[3,4]`).

    Args:
        program: a `ClosedJaxpr` or `Jaxpr`.
        title: a caption drawn above the graph.

    Returns:
        The DOT source, a string.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn import viz
        >>> dot = viz.to_dot(nanofn.make_jaxpr(lambda x: fnp.sin(x) * 2.0)(fnp.ones(3)))
        >>> dot.count("->"), dot.count('label="f32[3]"'), dot.count('label="f32[]"')
        (4, 3, 1)
    """
    if isinstance(program, ClosedJaxpr):
        jaxpr, consts = program.jaxpr, program.consts
    elif isinstance(program, Jaxpr):
        jaxpr, consts = program, None
    else:
        raise TypeError(f"to_dot: expected a jaxpr (from make_jaxpr or jit_program), got "
                        f"{type(program).__name__}")
    w = _Writer()
    w.jaxpr(jaxpr, prefix="", consts=consts)
    head = ["digraph jaxpr {", "  rankdir=TB;",
            f"  node [{_FONT}, fontsize=10];"]
    if title:
        head.append(f"  labelloc=t; label={_label(html.unescape(title))};")
    return "\n".join(head + w.lines + ["}"]) + "\n"


def render(program, path: str, *, format: str | None = None, title: str | None = None) -> str:
    """Draw a jaxpr to an image file with Graphviz (`pip install "nanofn[viz]"` and the
    `dot` program); the format comes from `path`'s suffix (svg, png, pdf) unless given.

    Returns the path written. Without the `graphviz` package this raises `ImportError`
    saying how to install it; `to_dot` needs nothing.

    Example:
        >>> import nanofn, nanofn.numpy as fnp
        >>> from nanofn import viz
        >>> prog = nanofn.make_jaxpr(fnp.sin)(fnp.ones(2))
        >>> viz.render(prog, "sin.svg")  # doctest: +SKIP
        'sin.svg'
    """
    try:
        import graphviz
    except ImportError as err:
        raise ImportError("nanofn.viz.render needs the graphviz package and the Graphviz "
                          "'dot' program: pip install 'nanofn[viz]' (and e.g. apt install "
                          "graphviz); viz.to_dot gives the DOT text without them") from err
    import os
    stem, suffix = os.path.splitext(path)
    fmt = format or suffix.lstrip(".") or "svg"
    src = graphviz.Source(to_dot(program, title=title))
    out = src.render(outfile=path if suffix else f"{stem}.{fmt}", format=fmt, cleanup=True)
    return out


def plot_curves(path: str, curves: dict, *, title: str | None = None) -> str:
    """Plot training curves to an image file, one panel per curve, stacked (matplotlib,
    the optional extra `nanofn[plot]`, imported only here).

    Args:
        path: the image file to write (png, svg or pdf, from its suffix).
        curves: `{name: ys}` or `{name: (xs, ys)}`; without xs, x is the step number.
            A name like `"test accuracy (per epoch)"` is shown as the panel's label.
        title: a title over the figure.

    Returns:
        `path`.

    Example:
        >>> from nanofn import viz
        >>> viz.plot_curves("curves.png", {"train loss": [2.3, 1.1, 0.6],
        ...                                "test accuracy": ([1, 2], [0.8, 0.9])})  # doctest: +SKIP
        'curves.png'
    """
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("nanofn.viz.plot_curves needs matplotlib: "
                          "pip install 'nanofn[plot]'") from err
    if not curves:
        raise ValueError("plot_curves: no curves given")
    matplotlib.use("Agg", force=False)  # files only; no window
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(curves), 1, figsize=(6, 2.4 * len(curves)), squeeze=False)
    for ax, (name, data) in zip(axes[:, 0], curves.items()):
        if isinstance(data, tuple) and len(data) == 2:
            xs, ys = data
        else:
            ys = list(data)
            xs = range(1, len(ys) + 1)
        ax.plot(list(xs), list(ys), marker="o" if len(ys) <= 50 else None, markersize=3)
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step (or epoch, where given)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
