"""One colour per method, the same in every figure of the book, safe for colour-blind readers.

Eleven colours from Okabe and Ito's and Paul Tol's colour-blind-safe schemes, chosen so that
every two of them (and each against the white page) stay apart under simulated protanopia,
deuteranopia and tritanopia (Machado et al. 2009, full severity) by at least 15 in CIELAB ΔE,
which the test suite checks. They follow the loss registry's order
(:data:`valf_study.run.objective.LOSSES`); the two readings of VALF's eq. 7 get the two reds, a
family a reader sees at a glance. A method the registry does not name (a resampling variant,
say ``"CCE + oversampling"``) takes its loss's colour.

References
----------
- Okabe, M., Ito, K. (2008). Color universal design (CUD): how to make figures and
  presentations that are friendly to colorblind people. https://jfly.uni-koeln.de/color/
- Tol, P. (2021). Colour schemes. SRON technical note SRON/EPS/TN/09-002, issue 3.2.
- Machado, G. M., Oliveira, M. M., Fernandes, L. A. F. (2009). A physiologically-based model
  for simulation of color vision deficiency. IEEE Transactions on Visualization and Computer
  Graphics 15(6), 1291-1298. https://doi.org/10.1109/TVCG.2009.113
"""

from __future__ import annotations

__all__ = ["MUTED", "method_colour", "method_colours"]

#: The colours of the registry's losses other than VALF, in its order (CCE, WCCE, FL, CB,
#: CEFL, CEFL2, DWFL, DRW, CDB); a loss added later takes the next.
MUTED = (
    "#332288",  # indigo (Tol)
    "#88CCEE",  # cyan (Tol)
    "#009E73",  # bluish green (Okabe-Ito)
    "#117733",  # green (Tol)
    "#DDCC77",  # sand (Tol)
    "#BBBBBB",  # grey (Tol)
    "#AA4499",  # purple (Tol)
    "#E69F00",  # orange (Okabe-Ito)
    "#000000",  # black
)
#: The readings of VALF's eq. 7: vermillion and wine.
VALF_READINGS = {"VALF (r=0.01)": "#D55E00", "VALF (r=1)": "#882255"}
_FALLBACK = "#BBBBBB"


def _registry_colours():
    from valf_study.run.objective import LOSSES

    others = [name for name in LOSSES if name != "VALF"]
    return dict(zip(others, MUTED))


def method_colour(method):
    """The colour of a method (a run's ``method``: a loss name, or ``VALF (r=...)``).

    Examples
    --------
    >>> method_colour("VALF (r=0.01)"), method_colour("CCE")
    ('#D55E00', '#332288')
    >>> method_colour("CCE + oversampling") == method_colour("CCE")
    True
    """
    method = str(method)
    if method in VALF_READINGS:
        return VALF_READINGS[method]
    if method.startswith("VALF"):
        return VALF_READINGS["VALF (r=1)"]
    colours = _registry_colours()
    if method in colours:
        return colours[method]
    loss = method.split(" ")[0]
    return colours.get(loss, _FALLBACK)


def method_colours(methods):
    """``{method: colour}`` for several methods (a seaborn ``palette``)."""
    return {method: method_colour(method) for method in methods}
