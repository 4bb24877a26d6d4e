"""Drawing one tile: H&E-like tissue painted as stain concentrations, then stained.

Every tile starts as stroma and is painted with its class pattern, as two stain concentration
maps (hematoxylin, eosin) turned into RGB with the Beer-Lambert law; see
:mod:`valf_study.data.synthetic` for what each class looks like and what ``difficulty`` does.
"""

from __future__ import annotations

import math
import zlib

import cv2
import numpy as np

from valf_study.data.synthetic.metadata import image_dir
from valf_study.data.synthetic.settings import (
    DEFAULTS,
    GRADES,
    RESOLUTIONS,
    SUPERCLASSES,
    check_image_size,
    check_seed,
    check_unit_interval,
)

__all__ = ["render_tile"]


# Reference stain vectors (optical density per unit concentration, RGB order), the H&E
# reference of Macenko et al. (2009): hematoxylin absorbs red and green (purple-blue), eosin
# mostly green (pink).
_HEMATOXYLIN_OD = np.array([0.5626, 0.7201, 0.4062], np.float32)
_EOSIN_OD = np.array([0.2159, 0.8012, 0.5581], np.float32)

# Differentiation -> irregularity of outlines, spread of nuclear sizes, share of glands that
# lost their lumen (ACA) and keratin pearls per 20x tile (SCC).
_IRREGULARITY = {"bd": 0.05, "md": 0.11, "pd": 0.20}
_PLEOMORPHISM = {"bd": 0.08, "md": 0.15, "pd": 0.26}
_SOLID_GLANDS = {"bd": 0.0, "md": 0.12, "pd": 0.35}
_PEARLS = {"bd": 2.2, "md": 1.4, "pd": 0.6}


# ---------------------------------------------------------------------------
# Drawing primitives (all vectorised; loops run over structures, never pixels)
# ---------------------------------------------------------------------------

_SHIFT = 4  # sub-pixel bits for OpenCV drawing: small nuclei keep their shape
_ONE = 1 << _SHIFT


def _smooth_noise(rng, shape, feature_px):
    """Noise of mean about 0 and standard deviation about 1, varying over ``feature_px``."""
    height, width = shape
    grid = (max(2, int(height / feature_px) + 2), max(2, int(width / feature_px) + 2))
    small = rng.standard_normal(grid).astype(np.float32)
    small = (small - small.mean()) / (small.std() + 1e-6)
    # Cubic interpolation of white noise keeps about 0.7 of its standard deviation.
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC) * np.float32(1.4)


def _noise(rng, shape):
    """Zero-mean, unit-variance pixel noise (uniform), from random bytes: several times
    faster than normal deviates, and the eye cannot tell the difference."""
    raw = np.frombuffer(rng.bytes(int(np.prod(shape))), np.uint8).reshape(shape)
    return (raw.astype(np.float32) - np.float32(127.5)) * np.float32(1 / 73.9)


def _jittered_grid(rng, shape, spacing, jitter):
    """Points on a grid of ``spacing`` pixels, each moved by up to ``jitter * spacing``."""
    height, width = shape
    ys = np.arange(-0.5 * spacing, height + spacing, spacing * 0.866)  # hexagonal rows
    xs = np.arange(-0.5 * spacing, width + spacing, spacing)
    gy, gx = np.meshgrid(ys, xs, indexing="ij")
    gx = gx + (np.arange(len(ys))[:, None] % 2) * spacing / 2
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    points += rng.uniform(-jitter, jitter, points.shape) * spacing
    return points


def _voronoi(shape, points):
    """Label map of the nearest point (1-based) and a mask of the cell borders."""
    height, width = shape
    seeds = np.full(shape, 255, np.uint8)
    inside = (
        (points[:, 0] >= 0) & (points[:, 0] < width) & (points[:, 1] >= 0) & (points[:, 1] < height)
    )
    xy = np.round(points[inside]).astype(int)
    xy[:, 0] = np.clip(xy[:, 0], 0, width - 1)
    xy[:, 1] = np.clip(xy[:, 1], 0, height - 1)
    seeds[xy[:, 1], xy[:, 0]] = 0
    _, labels = cv2.distanceTransformWithLabels(
        seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    border = np.zeros(shape, bool)
    border[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    border[1:, :] |= labels[1:, :] != labels[:-1, :]
    return labels, border


def _draw_ellipses(canvas, centres, axes, angles, values):
    """Filled anti-aliased ellipses on a uint8 canvas; later ones cover earlier ones."""
    centres = np.round(np.asarray(centres) * _ONE).astype(int)
    axes = np.round(np.maximum(np.asarray(axes), 0.5) * _ONE).astype(int)
    rows = zip(
        centres.tolist(),
        axes.tolist(),
        np.asarray(angles, float).tolist(),
        np.asarray(values).astype(int).tolist(),
    )
    for centre, axis, angle, value in rows:
        cv2.ellipse(canvas, centre, axis, angle, 0, 360, value, -1, cv2.LINE_AA, _SHIFT)


def _to_float(canvas):
    return canvas.astype(np.float32) * (1.0 / 255.0)


def _blob_outline(rng, centre, radius, irregularity, n=40):
    """Closed outline ``r(theta) = R (1 + sum of low harmonics)``: a lumpy circle."""
    theta = np.linspace(0, 2 * np.pi, n, endpoint=False)
    wobble = np.zeros(n)
    for harmonic in (2, 3, 4, 5):
        wobble += rng.normal(0, irregularity / harmonic**0.5) * np.cos(
            harmonic * theta + rng.uniform(0, 2 * np.pi)
        )
    stretch = rng.uniform(1.0, 1.0 + 2 * irregularity)
    angle = rng.uniform(0, np.pi)
    r = radius * np.clip(1 + wobble, 0.5, 1.6)
    x, y = r * np.cos(theta) * stretch, r * np.sin(theta) / stretch
    c, s = np.cos(angle), np.sin(angle)
    return theta, np.stack([centre[0] + c * x - s * y, centre[1] + s * x + c * y], axis=1)


def _fill_poly(canvas, outline, value):
    pts = np.round(outline * _ONE).astype(np.int32)
    cv2.fillPoly(canvas, [pts], int(value), cv2.LINE_AA, _SHIFT)


# ---------------------------------------------------------------------------
# Tissue patterns: each paints hematoxylin (H) and eosin (E) concentration maps
# ---------------------------------------------------------------------------


class _Tissue:
    """Stain concentration maps of one tile, built up layer by layer."""

    def __init__(self, rng, shape, unit):
        self.rng, self.shape, self.unit = rng, shape, unit
        self.area_units = shape[0] * shape[1] / unit**2  # tile area in (20x-)units squared
        self.hema = np.zeros(shape, np.float32)
        self.eosin = np.zeros(shape, np.float32)
        self._grain = None

    def grain(self):
        """Chromatin texture, 1 +- 0.25, drawn once per tile and shared by all nuclei."""
        if self._grain is None:
            grain = 1 + 0.25 * _noise(self.rng, self.shape)
            if self.unit >= 0.6:
                grain = cv2.GaussianBlur(grain, (0, 0), 0.7)
            self._grain = grain
        return self._grain

    def paint(self, mask, hema, eosin):
        """Replace both stains by ``(hema, eosin)`` where ``mask`` (soft, in [0, 1]) is set."""
        self.hema += mask * (hema - self.hema)
        self.eosin += mask * (eosin - self.eosin)

    def soft(self, canvas, sigma_units=0.5):
        """A drawn uint8 mask as float in [0, 1] with edges softened by ``sigma_units``."""
        mask = _to_float(canvas)
        sigma = sigma_units * self.unit
        return cv2.GaussianBlur(mask, (0, 0), sigma) if sigma >= 0.3 else mask

    def count(self, per_10k_units):
        """A Poisson number of structures for a density per 10 000 square units."""
        return int(self.rng.poisson(per_10k_units * self.area_units / 1e4))

    def random_points(self, n, mask=None):
        """n uniform points in the tile, or on the pixels where ``mask`` is set."""
        height, width = self.shape
        if mask is None:
            return self.rng.uniform((0, 0), (width, height), (n, 2))
        ys, xs = np.nonzero(mask)
        if len(xs) == 0 or n == 0:
            return np.zeros((0, 2))
        pick = self.rng.integers(0, len(xs), n)
        return np.stack([xs[pick], ys[pick]], axis=1) + self.rng.uniform(-0.5, 0.5, (n, 2))

    def nuclei(self, centres, radius, aspect, angles, darkness, pleomorphism, rim=0.5):
        """Nuclei with chromatin texture; ``aspect`` > 1 elongates along ``angles`` (degrees).

        ``darkness`` scales the hematoxylin density (about 0.7 at 1); ``rim`` the darker
        nuclear membrane of vesicular tumour nuclei.
        """
        n = len(centres)
        if n == 0:
            return
        rng = self.rng
        size = radius * self.unit * np.exp(rng.normal(0, pleomorphism, n))
        elong = np.sqrt(np.maximum(aspect * np.exp(rng.normal(0, 0.1, n)), 0.3))
        axes = np.stack([size * elong, size / elong], axis=1)
        spread = np.exp(rng.normal(0, 0.5 * pleomorphism + 0.05, n))
        values = np.clip(255 * darkness * spread / 1.6, 30, 255)
        canvas = np.zeros(self.shape, np.uint8)
        _draw_ellipses(canvas, centres, axes, angles, values)
        density = _to_float(canvas) * (1.6 * 0.7)
        coverage = np.minimum(canvas * (3.0 / 255), 1.0)
        # Chromatin: a granular texture, and a darker rim (the nuclear membrane, from the
        # difference to a blurred copy), so that nuclei do not look like flat discs.
        grain = self.grain()
        sigma = 0.5 * radius * self.unit
        if rim and sigma >= 0.5:
            edge = np.maximum(density - cv2.GaussianBlur(density, (0, 0), sigma), 0)
            density = density * (1 - 0.35 * rim) + rim * 2.0 * edge
        self.hema += coverage * (density * grain - self.hema)
        self.eosin *= 1 - 0.6 * coverage

    def stroma(self, fibre_density=1.0, cellularity=1.0):
        """Pink collagen with wavy fibres and spindle-shaped fibroblast nuclei."""
        rng, unit, shape = self.rng, self.unit, self.shape
        self.eosin[:] = 0.34 + 0.07 * _smooth_noise(rng, shape, 30 * unit)
        self.hema[:] = 0.03
        # Fibres follow a common, slowly turning direction, as collagen bundles do.
        n = self.count(45 * fibre_density)
        steps, step = 12, 4.0 * unit
        base = rng.uniform(0, np.pi)
        turn = np.cumsum(rng.normal(0, 0.18, (n, steps)), axis=1)
        heading = base + rng.normal(0, 0.35, (n, 1)) + turn
        start = self.random_points(n)[:, None, :] - step * steps / 2 * np.stack(
            [np.cos(base), np.sin(base)]
        )
        path = start + np.cumsum(step * np.stack([np.cos(heading), np.sin(heading)], -1), 1)
        canvas = np.zeros(shape, np.uint8)
        thickness = max(1, round(0.7 * unit))
        # Four brightness levels, one drawing call each.
        level = rng.integers(0, 4, n)
        pts = np.round(path * _ONE).astype(np.int32)
        for value in range(4):
            lines = list(pts[level == value])
            if lines:
                cv2.polylines(
                    canvas, lines, False, 100 + 50 * value, thickness, cv2.LINE_AA, _SHIFT
                )
        self.eosin += 0.28 * self.soft(canvas, 0.4) - 0.06
        # Gaps between bundles: a little paler, with a fine texture.
        self.eosin *= 1 + 0.12 * _noise(rng, shape)
        n_nuclei = self.count(14 * cellularity)
        centres = self.random_points(n_nuclei)
        angles = np.degrees(base + rng.normal(0, 0.35, n_nuclei))
        self.nuclei(centres, 1.5, 5.0, angles, 1.0, 0.15, rim=0)

    def air(self, mask):
        """Clear both stains to white where ``mask`` (soft) is set: air, lumen, tears."""
        self.hema *= 1 - mask
        self.eosin *= 1 - mask


def _paint_alveoli(tissue, difficulty):
    """NOR: a lace of thin alveolar walls around large air spaces."""
    rng, unit, shape = tissue.rng, tissue.unit, tissue.shape
    spacing = 52 * unit * rng.uniform(0.8, 1.2)
    points = _jittered_grid(rng, shape, spacing, 0.45)
    _, border = _voronoi(shape, points)
    # Bend the straight Voronoi walls with a smooth displacement field: alveoli are not
    # polygons.
    height, width = shape
    grid_x, grid_y = np.meshgrid(
        np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32)
    )
    bend = 0.07 * spacing
    map_x = grid_x + bend * _smooth_noise(rng, shape, 1.2 * spacing)
    map_y = grid_y + bend * _smooth_noise(rng, shape, 1.2 * spacing)
    # (Thickened first, so that resampling leaves no gaps in the lines.)
    border = cv2.dilate(border.astype(np.uint8), np.ones((3, 3), np.uint8))
    border = cv2.remap(border, map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_REFLECT) > 0
    # A few walls are broken (septa cut obliquely or torn), joining neighbouring alveoli.
    border &= _smooth_noise(rng, shape, 0.4 * spacing) > -2.0
    distance = cv2.distanceTransform((~border).astype(np.uint8), cv2.DIST_L2, 3)
    # Walls thicken where the noise is high, and overall with difficulty (inflamed, fibrotic
    # lung); blurring the air mask before thresholding rounds the alveolar corners.
    # (Less one pixel for the dilation above, but never thinner than 1.5 px, or the blur
    # below would erase the wall.)
    half_width = unit * (
        2.0
        + 0.6 * _smooth_noise(rng, shape, 50 * unit).clip(-0.8, 2)
        + 2.0 * difficulty * rng.uniform(0.3, 1.0)
    )
    half_width = np.maximum(half_width - 1, 1.5)
    air = (distance > half_width).astype(np.float32)
    air = cv2.GaussianBlur(air, (0, 0), 1.5 * unit)
    air = np.clip((air - 0.6) * 5, 0, 1)
    wall = air < 0.5
    tissue.eosin[:] = 0.40 + 0.08 * _smooth_noise(rng, shape, 8 * unit)
    tissue.hema[:] = 0.06
    # Capillaries: red blood cells in the walls, as small bright-eosin discs.
    n_rbc = tissue.count(45)
    centres = tissue.random_points(n_rbc, wall)
    canvas = np.zeros(shape, np.uint8)
    _draw_ellipses(
        canvas, centres, np.full((n_rbc, 2), 1.6 * unit), np.zeros(n_rbc), np.full(n_rbc, 255)
    )
    tissue.eosin += 0.40 * tissue.soft(canvas, 0.3)
    tissue.air(air)
    # Alveolar macrophages floating in a few air spaces: pale pink cells, small nuclei.
    n_mac = tissue.count(4 + 6 * difficulty)
    centres = tissue.random_points(n_mac, air > 0.9)
    canvas = np.zeros(shape, np.uint8)
    _draw_ellipses(
        canvas,
        centres,
        rng.uniform(3, 4.5, (n_mac, 2)) * unit,
        rng.uniform(0, 180, n_mac),
        np.full(n_mac, 255),
    )
    tissue.paint(tissue.soft(canvas), 0.08, 0.30)
    tissue.nuclei(
        centres + rng.normal(0, unit, centres.shape), 1.6, 1.2, rng.uniform(0, 180, n_mac), 0.9, 0.1
    )
    # Pneumocyte and endothelial nuclei: sparse, small, flattened along the walls. More of
    # them (inflammation) with difficulty.
    n_nuclei = tissue.count(16 * (1 + 2.0 * difficulty))
    centres = tissue.random_points(n_nuclei, wall)
    tissue.nuclei(centres, 1.9, 2.2, rng.uniform(0, 180, n_nuclei), 1.0, 0.15, rim=0)


def _paint_glands(tissue, subclass, look):
    """Glands: a band of cytoplasm with a ring of nuclei around a white lumen."""
    rng, unit, shape = tissue.rng, tissue.unit, tissue.shape
    irregularity = _IRREGULARITY[subclass]
    radius = look["gland_radius"] * rng.uniform(0.85, 1.15)
    centres = _jittered_grid(rng, shape, 2.45 * radius, 0.3)
    centres = centres[rng.random(len(centres)) < look["gland_fill"]]
    epithelium = np.zeros(shape, np.uint8)
    lumen = np.zeros(shape, np.uint8)
    nuclei, nucleus_angles = [], []
    for centre in centres:
        gland_radius = radius * np.exp(rng.normal(0, 0.12 + irregularity))
        theta, outline = _blob_outline(rng, centre, gland_radius, irregularity)
        _fill_poly(epithelium, outline, 255)
        solid = rng.random() < look["solid_glands"]
        lumen_scale = 0 if solid else rng.uniform(0.42, 0.62)
        if lumen_scale:
            _fill_poly(lumen, centre + lumen_scale * (outline - centre), 255)
        # Nuclei line the basal side (outer part of the band), spaced about a diameter apart,
        # elongated towards the lumen; poorly differentiated glands pile them up irregularly.
        ring = centre + look["nucleus_ring"] * (outline - centre)
        perimeter = np.sum(np.linalg.norm(np.diff(ring, axis=0, append=ring[:1]), axis=1))
        n = max(6, int(perimeter / (look["nucleus_spacing"] * unit)))
        pick = (
            np.sort(rng.uniform(0, len(theta), n))
            if irregularity > 0.1
            else (np.arange(n) * len(theta) / n + rng.uniform(0, len(theta) / n))
        )
        i0 = np.floor(pick).astype(int) % len(theta)
        i1 = (i0 + 1) % len(theta)
        frac = (pick - np.floor(pick))[:, None]
        points = ring[i0] * (1 - frac) + ring[i1] * frac
        normal = points - centre
        normal /= np.linalg.norm(normal, axis=1, keepdims=True) + 1e-6
        scatter = rng.normal(0, 0.4 + 6 * irregularity, (n, 1)) * unit
        if solid:
            # A gland without lumen is a nest: fill its inside with nuclei too.
            inner = centre + rng.uniform(-0.55, 0.55, (max(2, n // 2), 2)) * gland_radius
            points = np.concatenate([points, inner])
            normal = np.concatenate([normal, rng.normal(0, 1, inner.shape)])
            scatter = np.concatenate([scatter, np.zeros((len(inner), 1))])
        nuclei.append(points + scatter * normal)
        nucleus_angles.append(np.degrees(np.arctan2(normal[:, 1], normal[:, 0])))
    tissue.paint(tissue.soft(epithelium), look["cytoplasm_hema"], look["cytoplasm_eosin"])
    if nuclei:
        centres = np.concatenate(nuclei)
        angles = np.concatenate(nucleus_angles) + rng.normal(0, 12, len(centres))
        tissue.nuclei(
            centres,
            look["nucleus_radius"],
            look["nucleus_aspect"],
            angles,
            look["nucleus_darkness"],
            look["pleomorphism"],
        )
    # Lumens are cleared last, with a faint pink secretion in some of them.
    lumen_mask = tissue.soft(lumen)
    tissue.air(lumen_mask)
    tissue.eosin += lumen_mask * look["secretion"] * rng.uniform(0, 1)


def _paint_sheets(tissue, subclass, look):
    """Nests of polygonal cells, separated by stroma, optionally with keratin pearls."""
    rng, unit, shape = tissue.rng, tissue.unit, tissue.shape
    field = _smooth_noise(rng, shape, 55 * unit)
    nest = (field > np.quantile(field, 1 - look["nest_fill"])).astype(np.uint8) * 255
    nest_mask = tissue.soft(nest, 1.0)
    spacing = look["cell_spacing"] * unit * rng.uniform(0.9, 1.1)
    points = _jittered_grid(rng, shape, spacing, 0.22 + _IRREGULARITY[subclass])
    labels, border = _voronoi(shape, points)
    # One cytoplasm shade per cell (some cells keratinise and turn bright pink).
    shade = look["cytoplasm_eosin"] * np.exp(rng.normal(0, 0.12, labels.max() + 1))
    keratinised = rng.random(len(shade)) < look["dyskeratosis"]
    shade[keratinised] = rng.uniform(0.6, 0.75, keratinised.sum())
    cells_eosin = shade[labels].astype(np.float32)
    membrane = border.astype(np.float32)
    if unit >= 0.6:
        membrane = cv2.GaussianBlur(membrane, (0, 0), 0.45 * unit)
        membrane = np.minimum(membrane * 2.0, 1.0)
    # Cell borders: a pale cleft with darker edges, where the intercellular bridges are.
    cells_eosin = cells_eosin * (1 - 0.55 * membrane)
    cells_hema = look["cytoplasm_hema"] + 0.14 * membrane
    tissue.hema += nest_mask * (cells_hema - tissue.hema)
    tissue.eosin += nest_mask * (cells_eosin - tissue.eosin)
    # A nucleus per cell of a nest, except in keratinised (anucleate) cells.
    xy = np.clip(np.round(points).astype(int), 0, [shape[1] - 1, shape[0] - 1])
    inside = np.all((points >= 0) & (points < [shape[1], shape[0]]), axis=1)
    keep = inside & (nest[xy[:, 1], xy[:, 0]] > 0) & ~keratinised[labels[xy[:, 1], xy[:, 0]]]
    points = points[keep]
    tissue.nuclei(
        points + rng.normal(0, 0.8 * unit, points.shape),
        look["nucleus_radius"],
        look["nucleus_aspect"] * 0.9,
        rng.uniform(0, 180, len(points)),
        look["nucleus_darkness"],
        look["pleomorphism"],
    )
    if look["lumens"]:
        # Small acinar spaces inside solid ACA: the residue of gland formation.
        n = tissue.count(look["lumens"])
        centres = tissue.random_points(n, nest > 0)
        canvas = np.zeros(shape, np.uint8)
        _draw_ellipses(
            canvas,
            centres,
            rng.uniform(2.5, 5, (n, 2)) * unit,
            rng.uniform(0, 180, n),
            np.full(n, 255),
        )
        tissue.air(tissue.soft(canvas))
    _paint_pearls(tissue, look["pearls"], nest)


def _paint_pearls(tissue, per_tile, nest):
    """Keratin pearls: concentric swirls of glassy pink keratin with flat nuclei around."""
    rng, unit, shape = tissue.rng, tissue.unit, tissue.shape
    n = rng.poisson(per_tile * tissue.area_units / (240 * 320))
    centres = tissue.random_points(n, nest > 0)
    for centre in centres:
        radius = rng.uniform(12, 24) * unit
        rings = np.zeros(shape, np.uint8)
        body = np.zeros(shape, np.uint8)
        _draw_ellipses(
            body, [centre], [(radius * 1.15, radius * 0.95)], [rng.uniform(0, 180)], [255]
        )
        n_rings = int(rng.integers(4, 9))
        thickness = max(1, round(0.8 * unit))
        for j in range(n_rings):
            r = radius * (j + 1) / n_rings
            offset = rng.normal(0, 0.08 * radius, 2)
            c = np.round((centre + offset) * _ONE).astype(int)
            axes = (int(r * rng.uniform(1.0, 1.3) * _ONE), int(r * rng.uniform(0.75, 1.0) * _ONE))
            cv2.ellipse(
                rings,
                (int(c[0]), int(c[1])),
                axes,
                float(rng.uniform(0, 180)),
                0,
                360,
                int(rng.integers(120, 255)),
                thickness,
                cv2.LINE_AA,
                _SHIFT,
            )
        body_mask = tissue.soft(body, 0.8)
        ring_mask = tissue.soft(rings, 0.5)
        tissue.paint(body_mask, 0.02, 0.42 + 0.1 * rng.random())
        tissue.eosin += body_mask * (0.55 * ring_mask - 0.1)
        # Flattened nuclei wrapped round the outer layers, tangential to the pearl.
        k = int(rng.integers(5, 11))
        angle = rng.uniform(0, 2 * np.pi, k)
        dist = radius * rng.uniform(0.75, 1.15, k)
        points = centre + dist[:, None] * np.stack([np.cos(angle), np.sin(angle)], 1)
        tissue.nuclei(points, 2.4, 4.0, np.degrees(angle) + 90, 1.0, 0.15, rim=0)


def _looks(superclass, subclass, difficulty):
    """Class appearance, with ACA and SCC parameters pulled together as difficulty grows."""
    d = difficulty
    pleo = _PLEOMORPHISM[subclass]

    def towards_middle(aca_value, scc_value, own):
        middle = (aca_value + scc_value) / 2
        value = aca_value if own == "aca" else scc_value
        return value + d * 0.85 * (middle - value)

    common = {
        "nucleus_radius": towards_middle(2.5, 3.6, superclass),
        "nucleus_aspect": towards_middle(2.2, 1.15, superclass),
        "nucleus_darkness": towards_middle(0.95, 1.1, superclass),
        "cytoplasm_eosin": towards_middle(0.30, 0.46, superclass),
        "cytoplasm_hema": towards_middle(0.16, 0.05, superclass),
        "pleomorphism": pleo * (1.3 if superclass == "scc" else 1.0),
    }
    glands = {
        "gland_radius": 24.0,
        "gland_fill": 0.75,
        "solid_glands": _SOLID_GLANDS[subclass],
        "nucleus_ring": 0.80,
        "nucleus_spacing": 3.9,
        "secretion": 0.15,
    }
    sheets = {
        "nest_fill": 0.72,
        "cell_spacing": towards_middle(11.0, 16.0, superclass),
        "dyskeratosis": 0.02,
        "lumens": 0.0,
        "pearls": 0.0,
    }
    if superclass == "aca":
        sheets.update(dyskeratosis=0.0, lumens=6.0)
    else:
        glands.update(
            gland_radius=26.0,
            nucleus_ring=0.72,
            nucleus_spacing=7.0,
            secretion=0.4,
            solid_glands=0.2,
        )
        sheets.update(dyskeratosis=0.05 * (1 - 0.6 * d), pearls=_PEARLS[subclass] * (1 - 0.8 * d))
    return {**common, **glands, **sheets}


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def _patient_stain(seed, patient_id):
    """Stain of one patient's slides: stain vectors, strengths, hue, saturation, brightness."""
    rng = np.random.default_rng([seed, int(patient_id), 0x57A1])

    def jitter(vector, sigma):
        v = np.abs(vector + rng.normal(0, sigma, 3)).astype(np.float32)
        return v / np.linalg.norm(v)

    return {
        "hema_od": jitter(_HEMATOXYLIN_OD, 0.04),
        "eosin_od": jitter(_EOSIN_OD, 0.035),
        "hema_gain": float(np.exp(rng.normal(0, 0.15))),
        "eosin_gain": float(np.exp(rng.normal(0, 0.18))),
        "hue": float(rng.normal(0, 4.0)),  # degrees
        "saturation": float(np.exp(rng.normal(0, 0.12))),
        "brightness": float(np.clip(rng.normal(1.0, 0.035), 0.9, 1.06)),
        "background": (0.95 + rng.uniform(-0.02, 0.03, 3)).astype(np.float32),
    }


def _image_rng(seed, folder, resolution, image_id):
    """Generator of one image, from the seed and the image's name alone (not global state)."""
    name = f"{folder}_{resolution}_{int(image_id)}".encode()
    return np.random.default_rng([seed, zlib.crc32(name), 0x71E5])


def render_tile(
    superclass,
    subclass=None,
    resolution="20x",
    *,
    patient_id=1,
    image_id=0,
    seed=DEFAULTS["seed"],
    image_size=tuple(DEFAULTS["image_size"]),
    difficulty=DEFAULTS["difficulty"],
):
    """Draw one H&E-like tile as uint8 RGB, exactly as :func:`make_synthetic_release` does.

    Parameters
    ----------
    superclass : {"aca", "nor", "scc"}
    subclass : {"bd", "md", "pd"} or None
        Differentiation of a tumour tile; ignored (and may be None) for ``"nor"``.
    resolution : {"20x", "40x"}
        Magnification: 40x structures are twice as large in pixels.
    patient_id, image_id : int
        The patient sets the stain; the image id (with the folder and resolution) seeds the
        drawing.
    seed : int
        Seed of the whole release.
    image_size : tuple of int
        (height, width) in pixels; structure sizes scale with ``min(height / 240, width / 320)``
        (not below 0.2).
    difficulty : float
        In [0, 1]; see the module docstring.

    Returns
    -------
    numpy.ndarray
        uint8 array (height, width, 3), RGB, before JPEG compression.

    References
    ----------
    - Macenko, M. et al. (2009). A method for normalizing histology slides for quantitative
      analysis. IEEE ISBI, 1107-1110. https://doi.org/10.1109/ISBI.2009.5193250

    Examples
    --------
    >>> tile = render_tile("scc", "md", "40x", patient_id=3, image_id=7, image_size=(60, 80))
    >>> tile.shape, tile.dtype.name
    ((60, 80, 3), 'uint8')
    >>> bool(np.array_equal(tile, render_tile("scc", "md", "40x", patient_id=3, image_id=7,
    ...                                       image_size=(60, 80))))
    True
    >>> red, green, blue = tile.reshape(-1, 3).mean(axis=0)  # H&E: green absorbed most
    >>> bool(red > green and blue > green)
    True
    """
    if superclass not in SUPERCLASSES:
        raise ValueError(
            f"`superclass` must be one of {list(SUPERCLASSES)}, received {superclass!r}."
        )
    if superclass != "nor" and subclass not in GRADES:
        raise ValueError(
            f"`subclass` must be one of {list(GRADES)} for {superclass!r}, received {subclass!r}."
        )
    if resolution not in RESOLUTIONS:
        raise ValueError(
            f"`resolution` must be one of {list(RESOLUTIONS)}, received {resolution!r}."
        )
    seed = check_seed(seed)
    height, width = check_image_size(image_size)
    difficulty = check_unit_interval(difficulty, "difficulty", open_low=False)
    folder = image_dir(superclass, subclass if superclass != "nor" else None)
    rng = _image_rng(seed, folder, resolution, image_id)
    magnification = 2.0 if resolution == "40x" else 1.0
    # Structures shrink with the tile down to 48x64 and no further: below that they would be
    # sub-pixel, and drawing their sheer number would only cost time.
    unit = max(min(height / 240, width / 320), 0.2) * magnification
    tissue = _Tissue(rng, (height, width), unit)
    subclass = subclass if superclass != "nor" else "md"

    if superclass == "nor":
        _paint_alveoli(tissue, difficulty)
    else:
        look = _looks(superclass, subclass, difficulty)
        tissue.stroma(cellularity=1.0 + difficulty)
        # The ambiguous share: ACA drawn as solid sheets, SCC as gland-like rings.
        swapped = rng.random() < 0.5 * difficulty
        use_glands = (superclass == "aca") != swapped
        if use_glands:
            _paint_glands(tissue, subclass, look)
        else:
            _paint_sheets(tissue, subclass, look)
    # Occasional tissue tears and slide-edge gaps, in every class, so that white area alone
    # does not give the class away.
    if rng.random() < 0.25:
        field = _smooth_noise(rng, (height, width), 70 * unit)
        tear = np.clip((field - np.quantile(field, rng.uniform(0.88, 0.97))) * 3, 0, 1)
        tissue.air(tear)
    return _stain(tissue, _patient_stain(seed, patient_id), rng)


def _stain(tissue, stain, rng):
    """Beer-Lambert: RGB = background * 10^-(H * h_od + E * e_od), then patient colour shifts."""
    shape = tissue.shape
    hema = np.clip(tissue.hema, 0, 3) * stain["hema_gain"] * rng.uniform(0.92, 1.08)
    eosin = np.clip(tissue.eosin, 0, 3) * stain["eosin_gain"] * rng.uniform(0.92, 1.08)
    # Uneven section thickness: a slow multiplicative variation of both stains.
    thickness = 1 + 0.08 * _smooth_noise(rng, shape, 80 * tissue.unit)
    hema *= thickness
    eosin *= thickness
    # 10^-od = exp(-ln10 * od), per channel, in float32.
    rgb = np.empty((*shape, 3), np.float32)
    for channel in range(3):
        od = hema * stain["hema_od"][channel] + eosin * stain["eosin_od"][channel]
        rgb[..., channel] = np.exp(od * np.float32(-math.log(10))) * stain["background"][channel]
    if tissue.unit >= 0.6:  # the optics' blur, in pixels
        rgb = cv2.GaussianBlur(rgb, (0, 0), 0.55)
    # Patient colour: saturation, hue and brightness as one 3x3 colour matrix (cheaper than a
    # round trip through HSV, and with no 8-bit rounding in between).
    rgb = cv2.transform(rgb, _colour_matrix(stain["hue"], stain["saturation"], stain["brightness"]))
    rgb += _noise(rng, rgb.shape) * np.float32(0.012)
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


def _colour_matrix(hue_degrees, saturation, brightness):
    """RGB matrix: rotate the hue about the grey axis, scale saturation, scale brightness."""
    luma = np.array([0.299, 0.587, 0.114])
    saturate = saturation * np.eye(3) + (1 - saturation) * np.tile(luma, (3, 1))
    angle = math.radians(hue_degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    third, root = (1 - cos) / 3, math.sqrt(1 / 3) * sin
    rotate = np.array(
        [
            [cos + third, third - root, third + root],
            [third + root, cos + third, third - root],
            [third - root, third + root, cos + third],
        ]
    )
    return (brightness * rotate @ saturate).astype(np.float32)
