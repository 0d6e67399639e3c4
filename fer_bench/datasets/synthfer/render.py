"""Drawing synthfer faces: the cartoon renderer that turns a 68-point shape and an
:class:`~.appearance.Appearance` (skin, hair, background, lighting, occluders) into an RGB image.

Shapes are built in the canonical face frame of :mod:`.face` and projected with
the face's pose, so hair, ears, irises and wrinkles turn and roll with it. The
face is drawn with PIL on a canvas ``supersample`` times larger than the output
and box-downsampled, which anti-aliases the 1-2 px features that carry the
expression at 48-64 px. Lighting, colour cast and sensor noise are applied at the
output size with numpy.

Besides the landmark geometry, the renderer draws the texture cues FACS
describes for some action units (forehead wrinkles for raised brows, glabella
lines for lowered brows, nose wrinkles, nasolabial folds, crow's feet, visible
teeth), each with a strength proportional to the unit's intensity, so a blend
or a weak expression stays as ambiguous in texture as in geometry.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .appearance import Appearance, Colour, mix
from .face import AU_INDEX, HALF_W, Identity, Pose, depth, project


def _rgb(c: Colour) -> tuple[int, int, int]:
    r, g, b = c.tolist()
    return min(max(int(r), 0), 255), min(max(int(g), 0), 255), min(max(int(b), 0), 255)


@lru_cache(maxsize=8)
def _catmull_rom(n: int) -> np.ndarray:
    t = np.arange(n) / n
    t2, t3 = t * t, t * t * t
    return 0.5 * np.stack([-t3 + 2 * t2 - t, 3 * t3 - 5 * t2 + 2, -3 * t3 + 4 * t2 + t,
                           t3 - t2], axis=1)


def smooth(points: np.ndarray, closed: bool = False, n: int = 4) -> np.ndarray:
    """A Catmull-Rom curve through ``points`` with ``n`` samples per segment."""
    p = np.asarray(points, float)
    if closed:
        q = np.vstack([p[-1:], p, p[:2]])
        segs = len(p)
    else:
        q = np.vstack([2 * p[:1] - p[1:2], p, 2 * p[-1:] - p[-2:-1]])
        segs = len(p) - 1
    idx = np.arange(segs)[:, None] + np.arange(4)
    out = np.einsum("tk,skd->std", _catmull_rom(n), q[idx]).reshape(-1, 2)
    return out if closed else np.vstack([out, p[-1:]])


@lru_cache(maxsize=16)
def _circle(n: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 16) -> np.ndarray:
    return _circle(n) * (rx, ry) + (cx, cy)


def _flat(p: np.ndarray) -> list[float]:
    return p.ravel().tolist()


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return xx / size - 0.5, yy / size - 0.5


class _Canvas:
    """A supersampled PIL canvas plus the face's projection into it."""

    def __init__(self, img: Image.Image, pose: Pose):
        self.img = img
        self.draw = ImageDraw.Draw(img)
        self.pose = pose
        self.unit = pose.scale  # canvas pixels per face width

    def proj(self, pts: np.ndarray, z: np.ndarray | float) -> np.ndarray:
        return project(np.asarray(pts, float), z, self.pose)

    def width(self, w: float) -> int:
        return max(1, int(round(w * self.unit)))

    def poly(self, pts: np.ndarray, colour: Colour) -> None:
        if len(pts) >= 3:
            self.draw.polygon(_flat(pts), fill=_rgb(colour))

    def line(self, pts: np.ndarray, colour: Colour, w: float) -> None:
        self.draw.line(_flat(pts), fill=_rgb(colour), width=self.width(w), joint="curve")


def _background(rng: np.random.Generator, app: Appearance, side: int) -> Image.Image:
    cells = app.bg_cells
    t = rng.random((cells, cells, 1))
    small = (app.bg * (1 - t) + app.bg2 * t).astype(np.uint8)
    return Image.fromarray(small).resize((side, side), Image.BICUBIC)


def _hair_back(cv: _Canvas, idn: Identity, app: Appearance) -> None:
    """Long hair and bobs fall behind the head and neck."""
    if app.hair_style not in ("long", "bob"):
        return
    w = HALF_W + app.hair_volume + 0.04
    top = idn.forehead + app.hair_volume
    bottom = idn.chin + (app.hair_length if app.hair_style == "long" else -0.05)
    u = np.linspace(0, np.pi, 13)
    arc = np.stack([w * np.cos(u), idn.jaw_top - top * np.sin(u) ** 0.8], axis=1)
    pts = np.vstack([[[w * 1.02, bottom]], arc, [[-w * 1.02, bottom]]])
    cv.poly(cv.proj(pts, 0.0), app.hair * 0.8)


def _body(cv: _Canvas, idn: Identity, app: Appearance) -> None:
    neck = np.array([[-0.2, idn.chin - 0.2], [0.2, idn.chin - 0.2], [0.22, idn.chin + 0.7],
                     [-0.22, idn.chin + 0.7]])
    cv.poly(cv.proj(neck, 0.1), app.skin * 0.8)
    cv.poly(cv.proj(_ellipse(0, idn.chin + 0.72, 0.9, 0.36, 20), 0.0), app.clothes)


def _head(cv: _Canvas, idn: Identity, lm: np.ndarray, app: Appearance) -> None:
    for side in (-1, 1):
        ear = _ellipse(side * (HALF_W - 0.01), idn.eye_y + 0.08, 0.05, 0.09, 12)
        cv.poly(cv.proj(ear, -0.03), app.skin * 0.9)
    u = np.linspace(0, np.pi, 15)[1:-1]
    arc = np.stack([HALF_W * np.cos(u), idn.jaw_top - idn.forehead * np.sin(u) ** 0.8], axis=1)
    outline = smooth(np.vstack([lm[0:17], cv.proj(arc, depth(arc, 0.3))]), closed=True, n=3)
    cv.poly(outline, app.skin)


def _hair_front(cv: _Canvas, idn: Identity, shape: np.ndarray, app: Appearance) -> None:
    if app.hair_style == "bald":
        return
    w = HALF_W + app.hair_volume
    top = idn.forehead + app.hair_volume
    brow_top = float(shape[17:27, 1].min())
    line_y = brow_top - app.hairline
    side_y = idn.jaw_top + (0.02 if app.hair_style == "short" else 0.12)
    u = np.linspace(0, np.pi, 13)
    outer = np.stack([w * np.cos(u), side_y - (side_y - idn.jaw_top + top) * np.sin(u) ** 0.7],
                     axis=1)
    inner = np.stack([(HALF_W - 0.035) * np.cos(u[::-1]),
                      side_y + (line_y - side_y) * np.sin(u[::-1]) ** 0.5], axis=1)
    pts = np.vstack([outer, inner])
    cv.poly(cv.proj(pts, depth(pts, 0.3)), app.hair)


def _wrinkles(cv: _Canvas, shape: np.ndarray, aus: np.ndarray, app: Appearance) -> None:
    """Texture cues of action units, fading in with their intensity."""
    a = {n: float(aus[i]) for n, i in AU_INDEX.items()}
    shadow = app.skin * 0.55

    def line(pts: np.ndarray, k: float, w: float = 0.012) -> None:
        if k > 0.08:
            cv.line(cv.proj(pts, depth(pts, 0.9)), mix(app.skin, shadow, min(k, 1.0) * 0.85), w)

    inner, outer = max(a["brow_inner_up"], 0), max(a["brow_outer_up"], 0)
    k = max(inner, outer)
    if k > 0.08:
        brow_top = float(shape[17:27, 1].min())
        half = 0.07 + 0.15 * min(outer / (inner + outer + 1e-9), 1.0)
        for j, dy in enumerate((0.045, 0.085, 0.125)):
            x = np.linspace(-half * (1 - 0.12 * j), half * (1 - 0.12 * j), 7)
            y = brow_top - dy - 0.02 * (1 - (x / half) ** 2)
            line(np.stack([x, y], 1), k - 0.25 * j)

    k = 0.85 * max(a["brow_down"], 0) + 0.35 * max(a["brow_knit"], 0)
    gap = 0.5 * (shape[22, 0] - shape[21, 0])
    y0 = 0.5 * (shape[21, 1] + shape[22, 1])
    for side in (-1, 1):
        x0 = side * 0.45 * gap
        line(np.array([[x0, y0 + 0.01], [x0 * 1.2, y0 - 0.055]]), k)

    k = max(a["nose_wrinkle"], 0)
    for j in range(3):
        y = shape[27, 1] + (shape[29, 1] - shape[27, 1]) * (0.3 + 0.3 * j)
        line(np.array([[-0.035, y + 0.006], [0.0, y - 0.004], [0.035, y + 0.006]]), k * 1.1)

    k = max(a["corner_pull"], 0) + 0.6 * max(a["upper_lip_up"], 0) \
        + 0.3 * max(a["nose_wrinkle"], 0)
    for wing, corner, s in ((31, 48, -1), (35, 54, 1)):
        p0 = shape[wing] + (s * 0.025, -0.01)
        p2 = shape[corner] + (s * 0.035, 0.03)
        mid = 0.5 * (p0 + p2) + (s * 0.035, 0.0)
        line(smooth(np.stack([p0, mid, p2]), n=3), k * 0.9)

    k = max(a["cheek_raise"], 0)
    for outer_i, s in ((36, -1), (45, 1)):
        c = shape[outer_i]
        for dy in (-0.02, 0.015):
            line(np.array([[c[0] + s * 0.025, c[1] + dy * 0.4],
                           [c[0] + s * 0.06, c[1] + dy]]), k * 0.8, 0.009)

    for name, corner, s in (("corner_raise_l", 48, -1), ("corner_raise_r", 54, 1)):
        k = max(a[name], 0)
        c = shape[corner]
        line(np.array([[c[0] + s * 0.02, c[1] - 0.03], [c[0] + s * 0.035, c[1]],
                       [c[0] + s * 0.02, c[1] + 0.02]]), k)


def _brows(cv: _Canvas, idn: Identity, lm: np.ndarray, app: Appearance) -> None:
    for ids, inner_last in ((range(17, 22), True), (range(22, 27), False)):
        c = smooth(lm[list(ids)], n=3)
        tang = np.gradient(c, axis=0)
        tang /= np.linalg.norm(tang, axis=1, keepdims=True) + 1e-9
        normal = np.stack([tang[:, 1], -tang[:, 0]], axis=1)  # points up for x-increasing
        taper = np.linspace(0.55, 1.0, len(c))
        if not inner_last:
            taper = taper[::-1]
        half = 0.5 * idn.brow_thick * cv.unit * taper[:, None]
        cv.poly(np.vstack([c + normal * half, (c - normal * half)[::-1]]), app.brow_colour)


def _eyes(cv: _Canvas, idn: Identity, shape: np.ndarray, z: np.ndarray, app: Appearance) -> None:
    shadow = app.skin * 0.6
    lash = np.array([28.0, 20, 20])
    for up_ids, lo_ids in (([36, 37, 38, 39], [36, 41, 40, 39]),
                           ([42, 43, 44, 45], [42, 47, 46, 45])):
        upper, lower = smooth(shape[up_ids], n=5), smooth(shape[lo_ids], n=5)
        ez = float(z[up_ids].mean())
        sclera = np.vstack([upper, lower[::-1][1:-1]])
        cv.poly(cv.proj(sclera, ez), np.array([238.0, 236, 230]))
        # The iris sits on the eyeball: it stays put while the lids move and is
        # clipped by them, so wide eyes show white above it and narrowed ones hide it.
        cx = 0.5 * (shape[up_ids[0], 0] + shape[up_ids[-1], 0]) + app.gaze * 0.012
        cy = 0.5 * (shape[up_ids[0], 1] + shape[up_ids[-1], 1]) + 0.004
        r = 0.3 * idn.eye_w
        for rad, colour in ((r, app.iris), (0.45 * r, np.array([12.0, 10, 10]))):
            disc = _ellipse(cx, cy, rad, rad, 18)
            disc[:, 0] = np.clip(disc[:, 0], upper[0, 0], upper[-1, 0])
            top = np.interp(disc[:, 0], upper[:, 0], upper[:, 1])
            bot = np.interp(disc[:, 0], lower[:, 0], lower[:, 1])
            disc[:, 1] = np.clip(disc[:, 1], top, np.maximum(top, bot))
            cv.poly(cv.proj(disc, ez), colour)
        hx, hy = cx - 0.3 * r, cy - 0.35 * r
        if np.interp(hx, upper[:, 0], upper[:, 1]) < hy - 0.006:
            cv.poly(cv.proj(_ellipse(hx, hy, 0.17 * r, 0.17 * r, 8), ez), np.array([250.0] * 3))
        crease = upper[3:-3] + (0.0, -0.35 * idn.eye_h)
        cv.line(cv.proj(crease, ez), mix(app.skin, shadow, 0.5), 0.008)
        cv.line(cv.proj(lower, ez), mix(app.skin, shadow, 0.7), 0.009)
        cv.line(cv.proj(upper, ez), lash, 0.02)


def _nose(cv: _Canvas, lm: np.ndarray, shape: np.ndarray, z: np.ndarray, app: Appearance) -> None:
    shadow = app.skin * 0.6
    side = -1.0 if np.cos(app.light_angle) > 0 else 1.0  # shade the side away from the light
    ridge = np.array([shape[28] + (side * 0.03, 0.0), shape[30] + (side * 0.035, 0.0),
                      shape[32 if side < 0 else 34] + (0.0, -0.015)])
    cv.line(cv.proj(smooth(ridge, n=3), float(z[30]) - 0.05), mix(app.skin, shadow, 0.45), 0.01)
    cv.line(smooth(lm[31:36], n=3), shadow, 0.012)
    for a, b in ((31, 32), (34, 35)):
        m = 0.5 * (shape[a] + shape[b]) + (0.0, -0.006)
        cv.poly(cv.proj(_ellipse(m[0], m[1], 0.016, 0.009, 8), z[a]), app.skin * 0.35)


def _mouth(cv: _Canvas, lm: np.ndarray, app: Appearance) -> None:
    outer_up = smooth(lm[48:55], n=3)
    outer_lo = smooth(lm[[54, 55, 56, 57, 58, 59, 48]], n=3)
    inner_up = smooth(lm[60:65], n=3)
    inner_lo = smooth(lm[[60, 67, 66, 65, 64]], n=3)
    cv.poly(np.vstack([outer_up, inner_up[::-1]]), app.lips)
    cv.poly(np.vstack([outer_lo, inner_lo]), mix(app.lips, np.array([255.0] * 3), 0.08))
    gap = inner_lo - inner_up
    opening = float(np.linalg.norm(gap, axis=1).max())
    dark = app.lips * 0.45
    if opening > 0.004 * cv.unit:
        cv.poly(np.vstack([inner_up, inner_lo[::-1]]), np.array([58.0, 18, 24]))
        frac = np.clip(0.035 * cv.unit / (np.linalg.norm(gap, axis=1) + 1e-9), 0, 1)
        teeth = inner_up + frac[:, None] * gap
        cv.poly(np.vstack([inner_up, teeth[::-1]]), np.array([240.0, 236, 222]))
        cv.line(inner_lo, dark, 0.01)
    cv.line(inner_up, dark, 0.014)
    cv.line(outer_up, app.lips * 0.8, 0.006)


def _glasses(cv: _Canvas, idn: Identity, shape: np.ndarray, z: np.ndarray,
             app: Appearance) -> None:
    if app.glasses is None:
        return
    centres = []
    for ids in ([36, 39], [42, 45]):
        c = shape[ids].mean(0)
        centres.append(c)
        rim = _ellipse(c[0], c[1] + 0.005, 0.6 * idn.eye_w + 0.02, 0.065, 16)
        cv.line(cv.proj(np.vstack([rim, rim[:1]]), float(z[ids].mean())), app.glasses, 0.014)
    bridge = np.array([[centres[0][0] + 0.6 * idn.eye_w + 0.02, centres[0][1] - 0.01],
                       [0.0, centres[0][1] - 0.025],
                       [centres[1][0] - 0.6 * idn.eye_w - 0.02, centres[1][1] - 0.01]])
    cv.line(cv.proj(bridge, 0.5), app.glasses, 0.014)


def _occluder(cv: _Canvas, shape: np.ndarray, z: np.ndarray, app: Appearance) -> None:
    occ = app.occluder
    if occ is None:
        return
    if occ.kind == "sunglasses":
        for ids in ([36, 39], [42, 45]):
            c = shape[ids].mean(0)
            lens = _ellipse(c[0], c[1] + 0.01, 0.11, 0.075, 16)
            cv.poly(cv.proj(lens, float(z[ids].mean())), occ.colour)
        bar = np.array([[shape[39, 0], shape[39, 1] - 0.02], [shape[42, 0], shape[42, 1] - 0.02]])
        cv.line(cv.proj(bar, 0.5), occ.colour, 0.02)
        return
    if occ.kind == "mask":
        top = shape[29, 1]
        rim = np.vstack([shape[2:15], [[shape[14, 0] - 0.02, top], [0.0, top - 0.03],
                                       [shape[2, 0] + 0.02, top]]])
        cv.poly(cv.proj(rim, depth(rim, 0.8)), occ.colour)
        return
    c = shape[occ.anchor] + occ.offset
    rot = np.array([[np.cos(occ.angle), -np.sin(occ.angle)],
                    [np.sin(occ.angle), np.cos(occ.angle)]])
    if occ.kind == "bar":
        c = np.array([0.0, c[1]])
        local = np.array([[-0.65, -1], [0.65, -1], [0.65, 1], [-0.65, 1]]) * (1, 0.05 * occ.aspect)
        pts = c + local @ rot.T
        cv.poly(cv.proj(pts, 0.6), occ.colour)
        return
    if occ.kind == "hand":
        k = occ.size / 0.3  # the hand is designed at 0.3 face widths
        cv.poly(cv.proj(c + (_ellipse(0, 0, 0.13, 0.15, 14) * k) @ rot.T, 0.7), occ.colour)
        for j in range(4):
            root = np.array([-0.09 + 0.06 * j, -0.1]) * k
            tip = root + np.array([0.01 * (j - 1.5), -(0.17 + 0.04 * (j in (1, 2)))]) * k
            finger = c + np.stack([root, tip]) @ rot.T
            cv.line(cv.proj(finger, 0.7), occ.colour * 0.97, 0.055 * k)
        return
    half = np.array([occ.size, occ.size * occ.aspect]) / 2
    rect = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * half
    cv.poly(cv.proj(c + rect @ rot.T, 0.7), occ.colour)


def render(
    shape: np.ndarray,
    z: np.ndarray,
    idn: Identity,
    aus: np.ndarray,
    pose: Pose,
    app: Appearance,
    size: int,
    rng: np.random.Generator,
    supersample: int = 3,
) -> np.ndarray:
    """Draw a face; returns uint8 ``(size, size, 3)`` RGB.

    ``shape``/``z`` are the (deformed) canonical landmarks and their depths,
    ``aus`` the action-unit intensities that deformed them (for texture cues),
    ``pose`` maps canonical units to output pixels.
    """
    s = supersample
    side = size * s
    canvas_pose = Pose(pose.yaw, pose.roll, pose.scale * s, (pose.cx + 0.5) * s - 0.5,
                       (pose.cy + 0.5) * s - 0.5)
    cv = _Canvas(_background(rng, app, side), canvas_pose)
    lm = cv.proj(shape, z)

    _hair_back(cv, idn, app)
    _body(cv, idn, app)
    _head(cv, idn, lm, app)
    if app.blush > 0 or aus[AU_INDEX["cheek_raise"]] > 0:
        k = min(app.blush + 0.25 * max(aus[AU_INDEX["cheek_raise"]], 0), 0.4)
        for sgn in (-1, 1):
            cheek = _ellipse(sgn * 0.27, idn.nose_y - 0.02, 0.085, 0.055, 12)
            cv.poly(cv.proj(cheek, depth(cheek, 0.9)),
                    mix(app.skin, np.array([225.0, 95, 105]), k))
    _hair_front(cv, idn, shape, app)
    _wrinkles(cv, shape, aus, app)
    _brows(cv, idn, lm, app)
    _eyes(cv, idn, shape, z, app)
    _nose(cv, lm, shape, z, app)
    _mouth(cv, lm, app)
    _glasses(cv, idn, shape, z, app)
    _occluder(cv, shape, z, app)

    small = cv.img.reduce(s)
    if app.blur > 0:
        small = small.filter(ImageFilter.GaussianBlur(app.blur))
    img = np.asarray(small, dtype=np.float32)
    if app.gray:
        img = np.repeat(img @ np.array([0.299, 0.587, 0.114], np.float32), 3).reshape(img.shape)
    xx, yy = _grid(size)
    gain = app.brightness + app.light_strength * (xx * np.cos(app.light_angle)
                                                  + yy * np.sin(app.light_angle))
    img = img * gain[..., None] * app.cast.astype(np.float32)
    mean = img.mean()
    img = (img - mean) * app.contrast + mean
    if app.noise_std > 0:
        img += rng.normal(0.0, app.noise_std, img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)

