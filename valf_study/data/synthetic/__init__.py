"""A generated stand-in for LungHist700, written in exactly the released layout.

:func:`make_synthetic_release` writes ``<dest>/data.csv`` and
``<dest>/images/<dir>/<dir>_<res>_<id>.jpg`` with the folder names, file names, patient ids,
magnifications and ``data.csv`` row format of the real release, so that every reader of the
release runs unchanged on it. The tiles are drawn, not sampled from a model: an H&E-like
rendering of three tissue patterns, made to be a fair test bed for a small CNN.

What is drawn. Every tile starts as stroma (pink eosin with wavy collagen fibres and spindle
nuclei) and is then painted with its class pattern, as two stain concentration maps
(hematoxylin, eosin) turned into RGB with the Beer-Lambert law:

- **NOR**: thin alveolar walls around large white air spaces, sparse small flat nuclei, red
  blood cells in the walls, the odd alveolar macrophage.
- **ACA**: glands, rings of columnar nuclei around white lumens, in stroma.
- **SCC**: nests of large polygonal cells with round, darker nuclei and pink keratin pearls
  (concentric swirls).

The subclass (``bd``/``md``/``pd``, well/moderately/poorly differentiated) sets how regular the
structures are; the magnification sets their size (40x structures are twice as large in pixels
as 20x ones, so a tile holds about a quarter as many). Each patient has its own stain: stain
vectors, stain strengths, hue, saturation and brightness drawn from ``(seed, patient_id)``.

``difficulty`` in [0, 1] controls how much ACA and SCC overlap. At 0 they are clearly distinct.
As it grows, a share ``difficulty / 2`` of ACA tiles are drawn as solid sheets and the same share
of SCC tiles as gland-like rings, nuclear size, shape, darkness and cytoplasm colour of the two
classes converge, and keratin pearls become rarer; normal lung gets thicker, more cellular walls.

Every image is seeded from ``(seed, "<dir>_<res>_<id>")`` alone, never from global state, so a
seed gives byte-identical files whatever the subset, the order or the process that draws them.
A ``SYNTHETIC.json`` in ``dest`` records the generator version and its arguments, so that
generated data can always be told apart from the real release (:func:`read_synthetic_info`).
"""

from valf_study.data.synthetic.drawing import render_tile
from valf_study.data.synthetic.metadata import synthetic_metadata
from valf_study.data.synthetic.release import make_synthetic_release, read_synthetic_info
from valf_study.data.synthetic.settings import DEFAULTS, GENERATOR_VERSION, SYNTHETIC_INFO_FILE

__all__ = [
    "DEFAULTS",
    "GENERATOR_VERSION",
    "SYNTHETIC_INFO_FILE",
    "make_synthetic_release",
    "read_synthetic_info",
    "render_tile",
    "synthetic_metadata",
]
