"""NumPy key-nets: a small LeNet-style classifier, its training, and keying it with a camera.

A key-net runs on a keyed camera's encrypted frames (after the public per-fiber readout) and
gives the same logits the plain network gives on the plain digits: its first layer absorbs
the secret part of the camera's affine operator fused with the first convolution, and every
hidden layer carries a random positive monomial key (see models.md (Key-nets)).

Modules
-------
layers    forward/backward building blocks (convolution, average pooling, ReLU, linear, loss)
network   the LeNet-5-style network, weight files
train     seeded Adam training
dataset   the bundled 5000-digit MNIST subset and its fixed 4000/1000 split
keying    building, running and saving key-nets
operators the camera's digits-to-readouts map, composed or factored, and its sparse inverse
readout   the camera side: public per-site readout of frames, the secret map ``A_s, b_s``
verify    ``python -m keynet.verify``: the accuracy/size/time table
"""
