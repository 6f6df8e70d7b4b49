"""Port: an audio feature pipeline and a learned front-end in JAX + optax, in the style
of keyword-spotting and speech-feature code.

Synthetic "words" (chirps and two-tone bursts with noise) are framed two ways, by
strided gather and by `lax.conv_general_dilated_patches`, windowed with `jnp.hanning`
and `jnp.hamming`, and turned into power spectrograms by `jnp.fft.rfft`. A triangular
mel filterbank matrix (HTK mel scale) gives log-mel features, and MFCCs come from
`jax.scipy.fft.dct` (type 2, orthonormal; `idct` inverts it). A learned
front-end (a 1-d convolution filterbank via `lax.conv_general_dilated` with stride,
log-compression, then mean-pooling and a linear classifier) is trained a few steps with
`optax.adam` on the class labels, under `jit` and `vmap`. Finally
`jax.scipy.signal.convolve2d` runs Sobel and Laplacian edge detectors over the
log-mel spectrogram.
"""

import importlib

import numpy as np

from _jax_port import check_against_optax


def program(jax, jnp, lax, optax):
    fft = importlib.import_module(jax.__name__ + ".scipy.fft")
    dct, idct = fft.dct, fft.idct
    convolve2d = importlib.import_module(jax.__name__ + ".scipy.signal").convolve2d

    sr, n_samples = 4000, 1024
    n_fft, hop, n_mels, n_mfcc = 128, 64, 12, 8
    t = jnp.arange(n_samples) / sr
    k_noise, k_init = jax.random.split(jax.random.PRNGKey(21))
    f0 = jnp.array([300.0, 500.0, 800.0, 350.0, 550.0, 750.0])
    labels = jnp.array([0, 1, 0, 1, 0, 1])
    chirp = jnp.sin(2 * jnp.pi * (f0[:, None] * t + 800.0 * t ** 2))
    tones = (jnp.sin(2 * jnp.pi * f0[:, None] * t)
             + 0.5 * jnp.sin(2 * jnp.pi * 3.0 * f0[:, None] * t))
    envelope = jnp.exp(-((t - 0.12) / 0.06) ** 2)
    waves = jnp.where(labels[:, None] == 0, chirp, tones) * envelope
    waves = waves + 0.05 * jax.random.normal(k_noise, waves.shape)

    # Framing by a strided gather and by conv patches must agree.
    n_frames = 1 + (n_samples - n_fft) // hop
    idx = jnp.arange(n_frames)[:, None] * hop + jnp.arange(n_fft)[None, :]
    frames = waves[:, idx]                                       # (b, frames, n_fft)
    patches = lax.conv_general_dilated_patches(waves[:, None, :], (n_fft,), (hop,), "VALID")
    frames_conv = jnp.transpose(patches, (0, 2, 1))              # (b, frames, n_fft)

    def power_spec(frames, window):
        spec = jnp.fft.rfft(frames * window, axis=-1)
        return jnp.abs(spec) ** 2 / n_fft

    hann = jnp.hanning(n_fft)
    hamm = jnp.hamming(n_fft)
    spec_hann = power_spec(frames, hann)
    spec_hamm = power_spec(frames_conv, hamm)

    def hz_to_mel(f):
        return 2595.0 * jnp.log10(1.0 + f / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)

    def mel_filterbank():
        freqs = jnp.linspace(0.0, sr / 2, n_fft // 2 + 1)
        edges = mel_to_hz(jnp.linspace(hz_to_mel(0.0), hz_to_mel(sr / 2), n_mels + 2))
        lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
        up = (freqs - lower) / (centre - lower)
        down = (upper - freqs) / (upper - centre)
        fb = jnp.maximum(0.0, jnp.minimum(up, down))
        return fb * (2.0 / (upper - lower))                      # Slaney-style area norm

    fb = mel_filterbank()                                         # (n_mels, bins)
    log_mel = jnp.log(spec_hann @ fb.T + 1e-6)
    mfcc = dct(log_mel, type=2, axis=-1, norm="ortho")[..., :n_mfcc]
    back = idct(dct(log_mel, type=2, norm="ortho"), type=2, norm="ortho")
    # Per-utterance cepstral mean normalisation.
    mfcc_cmn = mfcc - jnp.mean(mfcc, axis=1, keepdims=True)

    # Learned front-end: a strided 1-d conv filterbank initialised from random
    # Gaussians, trained with a linear classifier.
    n_filters, width = 6, 33
    kf, kw = jax.random.split(k_init)
    params = {"filters": 0.1 * jax.random.normal(kf, (n_filters, 1, width)),
              "w": 0.1 * jax.random.normal(kw, (n_filters, 2)), "b": jnp.zeros(2)}

    def front_end(params, wave):
        y = lax.conv_general_dilated(wave[None, None, :], params["filters"], (16,), "SAME",
                                     dimension_numbers=("NCH", "OIH", "NCH"))[0]
        energy = jnp.log1p(y ** 2)                               # (filters, time)
        return jnp.mean(energy, axis=1)

    def loss_fn(params, waves, labels):
        feats = jax.vmap(front_end, in_axes=(None, 0))(params, waves)
        logits = feats @ params["w"] + params["b"]
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))

    opt = optax.adam(3e-2)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params, waves, labels)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    losses = []
    for _ in range(8):
        params, opt_state, loss = step(params, opt_state)
        losses.append(loss)

    # Edge detection on the log-mel "image".
    img = log_mel[0]
    sobel = jnp.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
    laplace = jnp.array([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    gx = convolve2d(img, sobel, mode="same")
    gy = convolve2d(img, sobel.T, mode="same")
    edges = {"magnitude": jnp.sqrt(gx ** 2 + gy ** 2 + 1e-12),
             "laplace_valid": convolve2d(img, laplace, mode="valid"),
             "laplace_full": convolve2d(img, laplace, mode="full")}
    return {"frames_equal": jnp.max(jnp.abs(frames - frames_conv)),
            "spec_hann": spec_hann, "spec_hamm": spec_hamm, "filterbank": fb,
            "log_mel": log_mel, "mfcc": mfcc, "mfcc_cmn": mfcc_cmn, "dct_back": back,
            "losses": jnp.stack(losses), "filters": params["filters"], "edges": edges}


def test_audio_frontend_matches_optax():
    # The log of small mel energies amplifies float32 rounding of the FFT (both libraries
    # are within rounding of a float64 reference), so features downstream of the log
    # get an absolute tolerance at the scale of that rounding.
    log_tol = (2e-3, 5e-3)
    got, _ = check_against_optax("test_optax_vis_audio_frontend", program, rtol=2e-3,
                                 atol=2e-4, overrides={"log_mel": log_tol, "mfcc": log_tol,
                                                       "dct_back": log_tol,
                                                       "edges": log_tol})
    assert got["frames_equal"] == 0.0
    np.testing.assert_allclose(got["dct_back"], got["log_mel"], rtol=1e-4, atol=1e-4)
    assert got["losses"][-1] < got["losses"][0]
