# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Designing the faceplate
#
# The faceplate is the heart of a keycam camera: a bundle of fibers whose input face sits in
# the lens's image plane and whose output face is imaged onto the sensor. Each fiber carries
# the light of one point of the image to a **secret** place on the output face. Designing it
# means choosing
#
# 1. the **lattice** — square or hexagonal, fiber pitch and core diameter (fill factor);
# 2. how the output face meets the **sensor** — fiber pitch against pixel pitch (moiré,
#    and how well the fibers can be read out);
# 3. the **block size** b — the key permutes fibers inside b × b blocks, and optionally
#    moves whole blocks; this is the privacy parameter;
# 4. and paying for privacy in **bundle length**: fibers that travel further sideways need a
#    longer bundle to bend gently enough to print.
#
# `KEYCAM_TUTORIAL_OUT` sets the folder for the figures (default `keycam_out/tutorials/`),
# `KEYCAM_TUTORIAL_QUICK=1` runs the same code with fewer random keys.

# %%
import math
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import EllipseCollection

from optics.faceplate import (
    FaceplateConfig,
    coupling_operator,
    keygen,
    sampling_operator,
    scramble,
    site_readout,
)
from optics.faceplate.lattice import block_ids
from sim.io import default_scene_path, read_image
from sim.scene import prepare_scene

QUICK = os.environ.get("KEYCAM_TUTORIAL_QUICK") == "1"
OUT = Path(os.environ.get("KEYCAM_TUTORIAL_OUT", "keycam_out/tutorials"))
OUT.mkdir(parents=True, exist_ok=True)

SEEDS = range(2) if QUICK else range(8)  # random keys averaged per design
# (the quick run also uses an 8 x 8 lattice in sections 3-4 and a coarser chart in 2)

# %% [markdown]
# ## 1. The lattice
#
# A `FaceplateConfig` describes the geometry and the recipe of the key: lattice, size, pitch,
# core diameter and key blocks. keycam's printable designs use a square lattice at 1 mm pitch
# with 0.6 mm cores (printed resin cores with 0.4 mm walls); the default camera has 16 × 16
# fibers with 4 × 4 key blocks, blocks permuted — section 4 shows why so few.
# Lengths in the configuration are in µm. Sites are numbered row-major, row 0 at the top, x
# to the right and y **down** from the centre of the face.
#
# The **fill factor** is the fraction of the face covered by cores — light falling between
# cores is lost: $FF = \frac{\pi}{4}(d/s)^2$ on a square lattice and
# $FF = \frac{\pi}{2\sqrt3}(d/s)^2 \approx 0.907\,(d/s)^2$ on a hexagonal one.

# %%
square = FaceplateConfig(lattice="square", rows=6, cols=6, pitch_um=1000, core_diameter_um=600)
hexagonal = square.model_copy(update={"lattice": "hexagonal"})

fig, axes = plt.subplots(1, 2, figsize=(11, 5.2), layout="constrained")
for ax, cfg in zip(axes, (square, hexagonal), strict=True):
    xy = cfg.site_centers_um() / 1000.0  # mm
    d = cfg.core_diameter_um / 1000.0
    ax.add_collection(
        EllipseCollection(
            d,
            d,
            0,
            units="xy",
            offsets=xy,
            offset_transform=ax.transData,
            facecolor="#ffd54f",
            edgecolor="k",
        )
    )
    for i, (x, y) in enumerate(xy):
        ax.text(x, y, str(i), ha="center", va="center", fontsize=7)
    ax.set(
        xlim=(xy[:, 0].min() - 1, xy[:, 0].max() + 1),
        ylim=(xy[:, 1].max() + 1, xy[:, 1].min() - 1),  # y down, as in an image
        aspect="equal",
        xlabel="x [mm]",
        ylabel="y [mm] (down)",
        title=f"{cfg.lattice}: fill factor {cfg.fill_factor:.3f}",
    )
fig.savefig(OUT / "03_lattice.png", dpi=110)
plt.show()

# %% [markdown]
# The fill factor is not just a formula: the sampling operator, which collects the image
# falling on each core with exact circle–square overlap areas, delivers exactly that
# fraction of a uniform image to the cores. Each core owns one lattice cell (area s² on a
# square lattice, √3/2 · s² on a hexagonal one); we average over cores well inside the
# sampled area:

# %%
for kind in ("square", "hexagonal"):
    cfg = FaceplateConfig(lattice=kind, rows=24, cols=24, pitch_um=1000, core_diameter_um=600)
    dx = 100.0  # µm per image sample
    xy = cfg.site_centers_um()
    inner = (np.abs(xy[:, 0]) < 8000) & (np.abs(xy[:, 1]) < 8000)  # cores well inside
    shape = (260, 260)  # 26 mm × 26 mm of image plane
    s = sampling_operator(cfg, dx_um=dx, shape=shape)
    flux = s @ np.ones(shape[0] * shape[1])  # image of 1 per sample -> flux into each core
    cell = (
        cfg.pitch_um**2 / dx**2 if kind == "square" else math.sqrt(3) / 2 * cfg.pitch_um**2 / dx**2
    )
    print(f"{kind:<10} formula {cfg.fill_factor:.4f}   sampled {flux[inner].mean() / cell:.4f}")

# %% [markdown]
# ## 2. Fiber pitch against pixel pitch
#
# A printed bundle has a 1 mm pitch; a sensor pixel is a few µm. A relay lens with
# magnification m images the output face onto the sensor, so the sensor sees the fibers at a
# pitch of m × 1 mm — the default camera uses m = 0.0217, putting 3.7 pixels of 5.86 µm on
# each fiber. Glass faceplates (3–25 µm elements) sit directly on the sensor instead
# (butt coupling, m = 1).
#
# `coupling_operator` says how much of each output core's light lands on each pixel (exact
# disk–square overlaps, plus an optional Gaussian relay blur). When the fiber pitch is an
# integer number of pixels, every fiber lands on the pixel grid the same way; otherwise the
# two lattices **beat** and a uniformly lit face shows a moiré pattern on the sensor that
# repeats every $1/|r - \mathrm{round}(r)|$ fibers for $r$ pixels per fiber pitch.

# %%
PIXEL_UM = 5.86
lattice = FaceplateConfig(rows=16, cols=16, pitch_um=1000, core_diameter_um=600)


def coupling_for(ratio: float, blur_um: float = 0.0):
    """Coupling of a 16 x 16 lattice imaged at `ratio` pixels per fiber pitch."""
    m = ratio * PIXEL_UM / lattice.pitch_um
    side = math.ceil(16 * ratio) + 4
    return coupling_operator(
        lattice,
        pixel_pitch_um=PIXEL_UM,
        sensor_shape=(side, side),
        magnification=m,
        blur_um=blur_um,
    ), side


fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), layout="constrained")
for ax, ratio in zip(axes, (3.0, 3.25, 3.7), strict=True):
    c, side = coupling_for(ratio)
    flat = (c @ np.ones(lattice.n_fibers)).reshape(side, side)  # every fiber emits 1
    ax.imshow(flat, cmap="gray", interpolation="nearest")
    if ratio == round(ratio):
        ax.set_title(f"{ratio} px per fiber: no beat")
    else:
        ax.set_title(
            f"{ratio} px per fiber: repeats every {1 / abs(ratio - round(ratio)):.1f} fibers"
        )
    ax.set_axis_off()
fig.suptitle("uniformly lit output face on the sensor (butt-coupled pixels, no relay blur)")
fig.savefig(OUT / "03_moire.png", dpi=110)
plt.show()

# %% [markdown]
# Moiré is not a defect to hide: it is what a real device shows, and the authorised readout
# (`site_readout`, a least-squares solve through the public coupling operator) undoes it
# exactly. What matters is **how many pixels each fiber gets**, together with the relay's
# blur. Two effects pull in opposite directions:
#
# * spreading one fiber over more pixels adds the read noise of every pixel (noise per fiber
#   grows roughly as √pixels when read noise dominates);
# * squeezing fibers onto fewer pixels lets the relay blur mix neighbouring fibers, and the
#   readout must then un-mix them, which amplifies noise.
#
# The chart below gives the readout noise per fiber, in units of the per-pixel noise, for
# the least-squares readout, $\sqrt{\mathrm{diag}\,(C^T C)^{-1}}$, against pixels per fiber
# pitch for three relay blurs (Gaussian σ on the sensor).

# %%
ratios = np.round(np.arange(1.0, 5.01, 0.5 if QUICK else 0.25), 2)
fig, ax = plt.subplots(figsize=(10, 5.5), layout="constrained")
for blur in (2.0, 4.0, 8.0):
    noise = []
    for ratio in ratios:
        c, side = coupling_for(ratio, blur_um=blur)
        cov = np.linalg.inv((c.T @ c).toarray())
        noise.append(float(np.sqrt(np.diag(cov)).mean()))
    ax.semilogy(ratios, noise, "o-", ms=4, label=f"relay blur σ = {blur:g} µm")
ax.axvline(3.7, color="0.5", ls=":", label="default camera (3.7 px, σ = 2 µm)")
ax.set(
    xlabel="pixels per fiber pitch",
    ylabel="readout noise per fiber / noise per pixel",
    title="how many pixels per fiber?",
    ylim=(0.8, 300),
)
ax.legend()
fig.savefig(OUT / "03_readout_noise.png", dpi=110)
plt.show()

# Noise-free, the readout gives back every fiber's light exactly, moiré or not:
c, side = coupling_for(3.7, blur_um=2.0)
truth = np.linspace(1.0, 2.0, lattice.n_fibers)
print(
    "largest readout error at 3.7 px per fiber:", np.abs(site_readout(c @ truth, c) - truth).max()
)

# %% [markdown]
# With a sharp relay, one to two pixels per fiber would be enough; a blurrier relay needs
# three or more before neighbouring fibers separate cleanly, after which each extra pixel
# only adds read noise. The default camera's 3.7 pixels per fiber with a σ = 2 µm relay sits
# on the flat part of the curve and tolerates a worse relay.
#
# ## 3. Block size: the privacy parameter
#
# The key permutes fibers **inside b × b blocks**. b = 1 is a coherent faceplate (an
# ordinary image); b = N on an N × N lattice is a global permutation. A block-local key
# leaves every block's mean brightness where it was, so the frame still carries a b-times
# smaller **thumbnail** of the scene. Permuting whole blocks as well (`permute_blocks=True`,
# each block travelling as a sub-bundle) scrambles the thumbnail.
#
# We measure the leak as the correlation between the scrambled picture (what the output face
# shows, `scramble`) and the plain picture, on the bundled photograph, averaged over random
# keys. The lattice is the default camera's 16 × 16; the quick run uses 8 × 8.

# %%
N = 8 if QUICK else 16  # fibers per side
BLOCKS = [b for b in (1, 2, 4, 8, 16) if b <= N]
# the default camera's key: 4 x 4 blocks, blocks permuted, drawn rows-then-columns
DEFAULT = (4, True, "rows_then_columns")
photo = read_image(default_scene_path()).data  # linear RGB in [0, 1]


def design(n: int, b: int, permute_blocks: bool, seed: int = 0, pitch_um: float = 1000.0,
           shuffle: str = "uniform"):  # fmt: skip
    """A faceplate of n x n fibers at `pitch_um` with 0.6 mm cores and b x b key blocks."""
    return FaceplateConfig(
        rows=n, cols=n, pitch_um=pitch_um, core_diameter_um=600.0, block_size=b,
        permute_blocks=permute_blocks, seed=seed, shuffle=shuffle,
    )  # fmt: skip


def leak(n: int, b: int, permute_blocks: bool, shuffle: str = "uniform") -> float:
    """Mean |correlation| of the scrambled and the plain photograph over random keys."""
    scene = prepare_scene(photo, (n, n))  # luminance, centre-cropped, area-averaged
    r = [
        np.corrcoef(scramble(scene, keygen(design(n, b, permute_blocks, s, shuffle=shuffle)))
                    .ravel(), scene.ravel())[0, 1]
        for s in SEEDS
    ]  # fmt: skip
    return float(np.mean(np.abs(r)))


def thumbnail(img: np.ndarray, b: int) -> np.ndarray:
    """Block means of `img`, shown at full size."""
    ids = block_ids(*img.shape, b)
    means = np.bincount(ids, img.ravel()) / np.bincount(ids)
    return means[ids].reshape(img.shape)


scene = prepare_scene(photo, (N, N))
bq = 4 if N >= 8 else 2
local = scramble(scene, keygen(design(N, bq, False)))
moved = scramble(scene, keygen(design(N, bq, True)))
panels = [
    (scene, f"scene on the {N} × {N} lattice"),
    (local, f"b = {bq}, blocks in place"),
    (thumbnail(local, bq), f"…its {bq} × {bq} block means"),
    (moved, f"b = {bq}, blocks permuted"),
]
fig, axes = plt.subplots(1, 4, figsize=(13, 3.6), layout="constrained")
for ax, (img, title) in zip(axes, panels, strict=True):
    ax.imshow(img ** (1 / 2.2), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title)
    ax.set_axis_off()
fig.savefig(OUT / "03_block_keys.png", dpi=110)
plt.show()

# %%
privacy = {}
for permute in (False, True):
    privacy[permute] = [leak(N, b, permute) for b in BLOCKS]
    label = "blocks permuted" if permute else "blocks in place"
    values = "  ".join(f"b={b}: {r:5.2f}" for b, r in zip(BLOCKS, privacy[permute], strict=True))
    print(f"{label:<16}{values}")

# %% [markdown]
# With blocks in place the correlation falls slowly with b — the thumbnail survives. With
# blocks permuted it drops to the level two unrelated pictures of this size share by chance
# (about 1/N) for every b ≥ 2. (b = N is one block, so the two rows agree there.)
#
# ## 4. The price: bundle length, and the light that gets through
#
# A printed fiber may tilt at most θ_max ≈ 30° from the build axis and must bend gently
# (minimum bend radius R, 10 mm for 0.6 mm resin cores), and neighbouring cores of
# diameter d need a wall c between them. A fiber that must move sideways by s needs at
# least s / tan θ_max of bundle length — the **straight-line bound** — and, because it must
# start and end parallel to the axis, really an S of two arcs of radius R:
#
# $$L(s) = 2R\sin\varphi + \frac{\max\big(0,\ s - 2R(1-\cos\theta_{max})\big)}{\tan\theta_{max}},
# \qquad \varphi = \min\big(\theta_{max},\ \arccos(1 - s/2R)\big),$$
#
# the **bend-aware bound** (`fabrication.routing.bend_length_mm`; for a whole key the
# largest displacement counts, plus the straight ends at both faces:
# `fabrication.routing.bend_bound_mm`).
#
# No real bundle reaches that bound: neighbouring fibers must pass each other, so the router
# (`fabrication.routing.route_permutation`) braids them. It splits the permutation into
# shuffles along columns and rows, fans the bundle out so that every line has a free lane
# beside it, and lets fibers overtake each other in two lanes; every stage is a
# curvature-continuous S-curve as short as the tilt and bend limits allow. While fibers
# slide along x the grid needs room for the lanes only across the slide, so phases along one
# axis run on a grid stretched across that axis, and the grid is reshaped where the axis
# changes. The result is guaranteed collision-free for every key, and checked.
#
# How a key is *drawn* matters as much. A uniformly drawn key (`shuffle = "uniform"`) needs
# three shuffles inside the blocks and three of the blocks. A key drawn **rows then
# columns** (`shuffle = "rows_then_columns"`) moves every fiber once along its row and then
# once along its column — inside its block, and with its block — and every line shuffle is
# one the braid does in a single pass (no three fibers of a line reverse their order). Every
# site still reaches every other.
#
# What the designer needs is the **light**: every printed fiber transmits
# $T = T_{att}\,T_{bend}\,T_{Fresnel}$ — attenuation over its length (0.5 dB/cm for printed
# resin), loss at its tightest bend, Fresnel loss at both faces. How much a bend strips
# depends on how steeply light travels in the core, and that is set by the lens in front of
# the face: its cone (f/2.8: 6.6° inside the core, which a 10 mm bend keeps entirely), tilted
# towards the edge of the face by the chief ray from the lens's exit pupil. Each face here
# sits behind the default camera's lens, scaled with the face: f/2.8, the field of view of
# 20 mm focal length on 16 mm of face, and its exit pupil 80 mm in front of a 16 mm face
# (nearly image-side telecentric). `fabrication.printed.printed_transmission` routes,
# samples and checks a key exactly as the export does and returns that transmission; it is
# also what the camera uses by default, for its own lens.

# %%
from fabrication.printed import printed_transmission
from fabrication.process import ProcessConfig, face_geometry
from fabrication.routing import bend_bound_mm, lower_bound_mm
from fabrication.transmission import Launch
from sim.config import CameraConfig

process = ProcessConfig.preset("resin")  # d = 0.6 mm, c = 0.4 mm, R = 10 mm, 30°, 0.5 dB/cm
print(
    f"process: core {process.core_diameter_mm} mm, wall {process.min_wall_mm} mm, "
    f"bend radius {process.min_bend_radius_mm} mm, tilt {process.max_tilt_deg}°, "
    f"{process.attenuation_db_per_cm} dB/cm"
)
lens = CameraConfig.default().lens
print(f"default lens: f/{lens.f_number}, exit pupil {lens.pupil_distance_mm:g} mm from the face")


def printed(n: int, b: int, permute: bool, shuffle: str = "uniform", pitch_um: float = 1000.0,
            pupil_mm: float | None = None) -> dict:  # fmt: skip
    """Bounds, routed length and printed transmission of one design (key seed 0)."""
    key = keygen(design(n, b, permute, 0, pitch_um, shuffle))
    face = face_geometry("square", n, n, pitch_um, process)
    width_mm = n * pitch_um / 1000.0
    pupil = lens.pupil_distance_mm if pupil_mm is None else pupil_mm
    launch = Launch.from_f_number(lens.f_number, pupil_distance_mm=pupil * width_mm / 16.0)
    pt = printed_transmission(key, process, launch)
    return {
        "straight": lower_bound_mm(key.routing, n, n, b, face.pitch_mm, process.tan_tilt)[0],
        "bend": bend_bound_mm(face, key.routing, process),
        "length": pt.bundle_length_mm,
        "T": float(pt.total.mean()),
    }


def drawable(b: int, permute: bool, shuffle: str) -> bool:
    """Whether `shuffle` can draw this design (rows-then-columns lines hold at most 8)."""
    try:
        design(N, b, permute, shuffle=shuffle)
    except ValueError:
        return False
    return True


SERIES = [(False, "uniform"), (True, "uniform"), (True, "rows_then_columns")]
front = {}
for permute, shuffle in SERIES:
    for b in BLOCKS:
        if permute and b in (1, N):  # the same keys as with the blocks in place
            continue
        if not drawable(b, permute, shuffle):
            continue
        r = privacy[permute][BLOCKS.index(b)] if shuffle == "uniform" else None
        r = leak(N, b, permute, shuffle) if r is None else r
        front[(b, permute, shuffle)] = f = {**printed(N, b, permute, shuffle), "leak": r}
        print(
            f"b={b:<3} {'blocks permuted' if permute else 'blocks in place':<16}{shuffle:<18}"
            f"bounds {f['straight']:6.1f} / {f['bend']:6.1f} mm   routed {f['length']:6.1f} mm"
            f"   printed T {100 * f['T']:6.3f} %   leak {f['leak']:.2f}"
        )

# %% [markdown]
# Now the whole trade-off in one picture: privacy (lower is better) against the light the
# printed part transmits (higher is better), with the default camera's key marked, and the
# routed lengths beside their bounds.

# %%
LABEL = {
    (False, "uniform"): "blocks in place (local key)",
    (True, "uniform"): "blocks permuted, uniform",
    (True, "rows_then_columns"): "blocks permuted, rows then columns",
}
STYLE = {
    (False, "uniform"): ("o", "C0"),
    (True, "uniform"): ("s", "C3"),
    (True, "rows_then_columns"): ("D", "C2"),
}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4.6), layout="constrained")
for series in SERIES:
    marker, color = STYLE[series]
    pts = [(k[0], f) for k, f in front.items() if k[1:] == series]
    ax1.semilogx([f["T"] for _, f in pts], [f["leak"] for _, f in pts], marker, color=color,
                 label=LABEL[series])  # fmt: skip
    for b, f in pts:
        ax1.annotate(f"b={b}", (f["T"], f["leak"]), textcoords="offset points", xytext=(5, 4),
                     fontsize=8)  # fmt: skip
    bs = [b for b, _ in pts]
    ax2.semilogy(bs, [f["length"] for _, f in pts], marker + "-", color=color,
                 label=LABEL[series] + ", routed")  # fmt: skip
    ax2.semilogy(bs, [f["bend"] for _, f in pts], marker + "--", color=color, mfc="none",
                 label=LABEL[series] + ", bend-aware bound")  # fmt: skip
if DEFAULT in front:
    f = front[DEFAULT]
    ax1.plot(f["T"], f["leak"], "*", ms=16, color="gold", mec="k",
             label=f"default camera's key (b = {DEFAULT[0]}, blocks permuted, rows then "
                   "columns)")  # fmt: skip
ax1.axhline(0.1, color="0.5", ls=":", label="leak 0.1")
ax1.axvline(0.1, color="0.5", ls="--", label="10 % transmission")
ax1.set(
    xlabel="mean fiber transmission of the printed part (resin, 0.5 dB/cm)",
    ylabel="correlation of frame with scene",
    title="privacy against printed transmission",
)
ax2.set(xlabel="block size b [fibers]", ylabel="bundle length [mm]",
        title="routed length and the bend-aware bound")  # fmt: skip
ax2.set_xscale("log", base=2)
for ax in (ax1, ax2):
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
fig.suptitle(f"{N} × {N} fibers at 1 mm, resin process (d = 0.6 mm, c = 0.4 mm, R = 10 mm, 30°)")
fig.savefig(OUT / "03_privacy_vs_length.png", dpi=110)
plt.show()

# %% [markdown]
# Reading the plot:
#
# * **Local keys** (blue) print short and bright, but leak the thumbnail.
# * **Permuting blocks** removes the leak, but then fibers cross the whole face. Drawn
#   uniformly (red), the braid needs six phases and the printed part passes only a few
#   percent of the light at 0.5 dB/cm. Drawn rows then columns (green), the same privacy
#   prints in two phases — roughly half as long after the fans and reshapes, and several
#   times brighter.
# * The bend-aware bound is a few centimetres; the braid still needs several times that,
#   because passing neighbours takes a fan-out to a coarser pitch and a sequence of passes,
#   each an S-curve limited by the bend radius.
#
# The length of a key that hides the scene grows with the face, and the light falls
# exponentially with the length. That is why the default camera has only 16 × 16 fibers:

# %%
sizes = [8, 12] if QUICK else [8, 12, 16, 24]
for n in sizes:
    f = printed(n, 4, True, DEFAULT[2])
    print(f"{n:>2} x {n:<2} fibers, 4 x 4 blocks permuted, rows then columns: routed "
          f"{f['length']:6.1f} mm (bend-aware bound {f['bend']:5.1f} mm), printed T "
          f"{100 * f['T']:.3f} %, leak about {leak(n, 4, True, DEFAULT[2]):.2f}")  # fmt: skip

# %% [markdown]
# The lens is the other lever. With its stop at the lens (exit pupil 20 mm in front of a
# 16 mm face) the chief ray to the corners tilts by 29°, the tilted cone no longer fits
# through the 10 mm bends, and the corner fibers lose most of their light:

# %%
for label, pupil in (("stop at the lens", 20.0), ("default lens", lens.pupil_distance_mm)):
    f = printed(N, *DEFAULT, pupil_mm=pupil)
    print(f"{label:<17} exit pupil {pupil * N / 16:5.1f} mm: printed T {100 * f['T']:.2f} %")

# %% [markdown]
# A face printed at the routing pitch — an **open face** — needs no fan-out: shorter, so the
# fibers transmit more, but the cores cover far less of the face, and light falling between
# cores is lost before it enters a fiber. What counts is the product:

# %%
pitch_open = process.open_face_pitch_mm * 1000.0
for label, pitch in (("packed face", 1000.0), ("open face", pitch_open)):
    f = printed(N, *DEFAULT, pitch_um=pitch)
    ff = design(N, DEFAULT[0], DEFAULT[1], pitch_um=pitch, shuffle=DEFAULT[2]).fill_factor
    print(f"{label:<12} pitch {pitch / 1000:.2f} mm: fill factor {ff:.3f}, routed "
          f"{f['length']:6.1f} mm, T {100 * f['T']:.3f} %, light per image area FF·T "
          f"{ff * f['T']:.2e}")  # fmt: skip

# %% [markdown]
# So the privacy you buy with block permutation is paid in bundle length and in light. The
# default camera's key — 16 × 16 fibers, 4 × 4 blocks permuted, drawn rows then columns —
# prints as a bundle of about 18 cm whose fibers pass a little over 10 % behind its nearly
# telecentric lens, with the thumbnail hidden. Further levers: a lower-loss material
# (`attenuation_db_per_cm`), a smaller face, or a router closer to the bound. What the
# faceplate cannot hide is discussed in the [threat model](../explanation/threat-model.md).

# %%
print("figures written to KEYCAM_TUTORIAL_OUT:")
print(sorted(p.name for p in OUT.glob("03_*.png")))
