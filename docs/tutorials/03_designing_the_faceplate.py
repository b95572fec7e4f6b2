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

SEEDS = range(1) if QUICK else range(4)  # random keys averaged per block size
# (the quick run also uses a 16 x 16 lattice in sections 3-4 and a coarser chart in 2)

# %% [markdown]
# ## 1. The lattice
#
# A `FaceplateConfig` describes the geometry and the recipe of the key; its defaults are
# keycam's default printable device: 64 × 64 fibers on a square lattice at 1 mm pitch with
# 0.6 mm cores (printed resin cores with 0.4 mm walls), 8 × 8 key blocks, blocks permuted.
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
# shows, `scramble`) and the plain picture, on the bundled photograph. The default lattice
# is 64 × 64; the quick run uses 16 × 16.

# %%
N = 16 if QUICK else 64  # fibers per side
BLOCKS = [b for b in (1, 2, 4, 8, 16, 32, 64) if b <= N]
photo = read_image(default_scene_path()).data  # linear RGB in [0, 1]
scene = prepare_scene(photo, (N, N))  # luminance, centre-cropped, area-averaged


def design(b: int, permute_blocks: bool, seed: int = 0) -> FaceplateConfig:
    """The default faceplate at N x N fibers with block size b."""
    return FaceplateConfig(rows=N, cols=N, block_size=b, permute_blocks=permute_blocks, seed=seed)


def leak(b: int, permute_blocks: bool, seed: int) -> float:
    key = keygen(design(b, permute_blocks, seed))
    return float(np.corrcoef(scramble(scene, key).ravel(), scene.ravel())[0, 1])


def thumbnail(img: np.ndarray, b: int) -> np.ndarray:
    """Block means of `img`, shown at full size."""
    ids = block_ids(N, N, b)
    means = np.bincount(ids, img.ravel()) / np.bincount(ids)
    return means[ids].reshape(img.shape)


local8 = scramble(scene, keygen(design(8, False)))
moved8 = scramble(scene, keygen(design(8, True)))
panels = [
    (scene, f"scene on the {N} × {N} lattice"),
    (local8, "b = 8, blocks in place"),
    (thumbnail(local8, 8), "…its 8 × 8 block means"),
    (moved8, "b = 8, blocks permuted"),
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
    privacy[permute] = [np.mean([leak(b, permute, s) for s in SEEDS]) for b in BLOCKS]
    label = "blocks permuted" if permute else "blocks in place"
    values = "  ".join(f"b={b}: {r:5.2f}" for b, r in zip(BLOCKS, privacy[permute], strict=True))
    print(f"{label:<16}{values}")

# %% [markdown]
# With blocks in place the correlation falls slowly with b — about 0.3 at b = 8 on the
# 64 × 64 linear-light photograph — because the thumbnail survives. With blocks permuted it
# drops to about zero for every b ≥ 2: the thumbnail is scrambled too. (b = N is one block,
# so the two rows agree there.)
#
# ## 4. The price: bundle length
#
# A printed fiber may tilt at most θ_max ≈ 30° from the build axis and must bend gently
# (minimum bend radius R, 10 mm for 0.6 mm resin cores), and neighbouring cores of
# diameter d need a wall c between them. A fiber that must move sideways by Δ needs at
# least Δ / tan θ_max of bundle length. Inside a b × b block the longest move is the block
# diagonal, which gives the **straight-line lower bound**
#
# $$L \ge \frac{\sqrt2\,(b-1)(d+c)}{\tan\theta_{max}},$$
#
# and for a key that moves fibers between blocks, the largest move of the key counts
# (`fabrication.routing.lower_bound_mm`).
#
# No real bundle reaches that bound: neighbouring fibers must pass each other, so the router
# (`fabrication.routing.route_permutation`) braids them in stages. It splits the permutation
# into a shuffle within columns, one within rows and one within columns again, fans the
# bundle out to a routing pitch of 2(d + c) so that every line has a free lane beside it,
# and lets fibers overtake each other in two lanes; every stage is a curvature-continuous
# S-curve as short as the tilt and bend limits allow. A block-local key is routed block by
# block; a key that moves blocks is routed over the whole face. The result is guaranteed
# collision-free for every key, and it is what tutorial 4 prints.

# %%
from fabrication.process import ProcessConfig, face_geometry
from fabrication.routing import lower_bound_mm, route_permutation

process = ProcessConfig.preset("resin")  # d = 0.6 mm, c = 0.4 mm, R = 10 mm, 30° tilt
face = face_geometry("square", N, N, 1000.0, process)  # 1 mm face pitch
print(
    f"process: core {process.core_diameter_mm} mm, wall {process.min_wall_mm} mm, "
    f"bend radius {process.min_bend_radius_mm} mm, tilt {process.max_tilt_deg}°"
)

bound, routed = {False: [], True: []}, {False: [], True: []}
for permute in (False, True):
    for b in BLOCKS:
        key = keygen(design(b, permute))
        lb, _ = lower_bound_mm(key.routing, N, N, b, face.pitch_mm, process.tan_tilt)
        route = route_permutation(face, key.routing, b, process)
        bound[permute].append(lb)
        routed[permute].append(route.length_mm)
        print(
            f"b={b:<3} {'blocks permuted' if permute else 'blocks in place':<16}"
            f"bound {lb:7.1f} mm   routed {route.length_mm:7.1f} mm   "
            f"({route.decomposition}, {len(route.stages)} stages)"
        )

# %% [markdown]
# Now the whole trade-off in one picture: privacy (lower is better) against the bundle
# length you must print (shorter is better). Solid lines are routed lengths, dashed lines
# the straight-line bound.

# %%
LABEL = {False: "blocks in place (local key)", True: "blocks permuted"}
STYLE = {False: ("o", "C0"), True: ("s", "C3")}
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(14, 4.4), layout="constrained")
for permute in (False, True):
    marker, color = STYLE[permute]
    ax1.semilogx(BLOCKS, privacy[permute], marker + "-", color=color, label=LABEL[permute])
    # b = 1 needs no routing at all: it is drawn at 1 mm on the log axes
    ax2.loglog(
        BLOCKS,
        np.maximum(routed[permute], 1),
        marker + "-",
        color=color,
        label=LABEL[permute] + ", routed",
    )
    ax2.loglog(
        BLOCKS,
        np.maximum(bound[permute], 1),
        marker + "--",
        color=color,
        mfc="none",
        label=LABEL[permute] + ", bound",
    )
    ax3.plot(routed[permute], privacy[permute], marker, color=color, label=LABEL[permute])
for b, x, y in zip(BLOCKS, routed[False], privacy[False], strict=True):
    ax3.annotate(f"b={b}", (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
ax3.annotate(
    f"b = 2 … {N}",
    (routed[True][-1], 0.0),
    textcoords="offset points",
    xytext=(-60, 12),
    fontsize=8,
    color="C3",
)
for ax in (ax1, ax2):
    ax.set_xticks(BLOCKS, [str(b) for b in BLOCKS])
    ax.set_xlabel("block size b [fibers]")
ax1.set(ylabel="correlation of frame with scene", title="privacy: what the frame leaks")
ax2.set(ylabel="bundle length [mm]", title="printability: how long the part is")
ax3.set(
    xlim=(0, None),
    xlabel="routed bundle length [mm]",
    ylabel="correlation of frame with scene",
    title="privacy against printability",
)
for ax in (ax1, ax2, ax3):
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
fig.suptitle(f"{N} × {N} fibers at 1 mm, resin process (d = 0.6 mm, c = 0.4 mm, R = 10 mm, 30°)")
fig.savefig(OUT / "03_privacy_vs_length.png", dpi=110)
plt.show()

# %% [markdown]
# Reading the plot:
#
# * **Local keys** (blue) are the short ones, and their length grows steadily with b — but
#   they leak the thumbnail: even b = 16 leaves a correlation of about 0.15.
# * **Permuting blocks** (red) removes the leak at every block size, but then fibers cross
#   the whole face and the bundle costs as much as a global permutation, whatever b is.
# * Routed lengths are many times the straight-line bound: the braid needs several stages,
#   each one an S-curve limited by the bend radius, plus the fan-out to the routing pitch.
#   On a large face the fan-out alone is long — spreading a 64 mm face to twice its pitch
#   moves the edge fibers sideways by about half the face width — which is why even b = 2
#   costs far more than its 2.4 mm bound. The bound tells you what no router can beat; the
#   router tells you what you will print.
#
# So the privacy you buy with block permutation is paid in bundle length, and a printer's
# build height decides what you can afford. A few levers reduce the price: a smaller bend
# radius (a different material), a steeper allowed tilt, a finer lattice, or a local key
# with a per-fiber gain key (`gain_key_rms`) and stray light (`bias_photons_per_s`) that
# hide block means without moving fibers far. What the faceplate cannot hide is discussed
# in the [threat model](../explanation/threat-model.md).

# %%
print("figures written to KEYCAM_TUTORIAL_OUT:")
print(sorted(p.name for p in OUT.glob("03_*.png")))
