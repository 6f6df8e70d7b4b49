"""Port: signal processing in JAX, in the style of the audio and deconvolution scripts
built on `jnp.fft` and `jax.scipy.signal`.

1. Linear convolution three ways: `jnp.fft.rfft`/`irfft` with zero padding,
   `jax.scipy.signal.convolve` and `fftconvolve` (modes 'full', 'same', 'valid'), and
   2-d `convolve2d` against `fftconvolve` on an image.
2. A short-time Fourier transform round trip: `jax.scipy.signal.stft` with a Hann
   window and `istft` back, plus `welch` and `csd` spectra of a two-tone signal.
3. Wiener deconvolution: a blurred noisy signal restored in the Fourier domain, and the
   blur kernel fitted by gradient descent on the reconstruction error (`jax.grad`
   through `rfft`/`irfft`, `lax.scan`).
"""

import numpy as np

from _jax_port import check_against_jax


def program(jax, jnp, lax, jsp):
    sig = jsp.signal
    k1, k2, k3 = jax.random.split(jax.random.key(9), 3)
    t = jnp.arange(128) / 64.0
    x = jnp.sin(2 * jnp.pi * 5.0 * t) + 0.5 * jnp.sin(2 * jnp.pi * 13.0 * t)
    x = x + 0.1 * jax.random.normal(k1, x.shape)
    h = jnp.exp(-0.5 * (jnp.arange(-6, 7) / 2.0) ** 2)
    h = h / h.sum()

    def fft_convolve(a, b):
        n = a.shape[0] + b.shape[0] - 1
        return jnp.fft.irfft(jnp.fft.rfft(a, n) * jnp.fft.rfft(b, n), n)

    conv = {mode: sig.convolve(x, h, mode=mode) for mode in ("full", "same", "valid")}
    fftc = {mode: sig.fftconvolve(x, h, mode=mode) for mode in ("full", "same", "valid")}
    ours = fft_convolve(x, h)

    image = jax.random.uniform(k2, (12, 10))
    kern2 = jnp.outer(h[4:9], jnp.array([1.0, 2.0, 1.0])) / 4.0
    conv2d = sig.convolve2d(image, kern2, mode="same", boundary="fill")
    fft2d = sig.fftconvolve(image, kern2, mode="same")
    corr = sig.correlate(x[:32], h, mode="valid")

    # 2. STFT round trip and spectra.
    freqs, times, zxx = sig.stft(x, fs=64.0, window="hann", nperseg=32, noverlap=24)
    _, x_back = sig.istft(zxx, fs=64.0, window="hann", nperseg=32, noverlap=24)
    f_w, pxx = sig.welch(x, fs=64.0, nperseg=32)
    y = jnp.roll(x, 3) + 0.05 * jax.random.normal(k3, x.shape)
    f_c, pxy = sig.csd(x, y, fs=64.0, nperseg=32)

    # 3. Wiener deconvolution and fitting the kernel.
    n = x.shape[0]
    kernel_true = jnp.zeros(n).at[:5].set(jnp.array([0.4, 0.3, 0.15, 0.1, 0.05]))
    blurred = jnp.fft.irfft(jnp.fft.rfft(x) * jnp.fft.rfft(kernel_true), n)
    noisy = blurred + 0.01 * jnp.cos(jnp.arange(n) * 1.3)

    def wiener(obs, kernel, snr=100.0):
        kf = jnp.fft.rfft(kernel, n)
        gain = jnp.conj(kf) / (jnp.abs(kf) ** 2 + 1.0 / snr)
        return jnp.fft.irfft(jnp.fft.rfft(obs) * gain, n)

    restored = wiener(noisy, kernel_true)

    def kernel_loss(taps):
        kernel = jnp.zeros(n).at[:5].set(taps)
        return jnp.mean((jnp.fft.irfft(jnp.fft.rfft(x) * jnp.fft.rfft(kernel), n)
                         - noisy) ** 2)

    def fit(taps, _):
        loss, g = jax.value_and_grad(kernel_loss)(taps)
        return taps - 0.2 * g, loss

    taps, fit_losses = lax.scan(fit, jnp.full((5,), 0.2), None, length=60)
    g_wiener = jax.grad(lambda kern: jnp.sum(wiener(noisy, jnp.zeros(n).at[:5].set(kern))
                                             * x))(jnp.array([0.4, 0.3, 0.15, 0.1, 0.05]))

    return {"conv": conv, "fftconv": fftc, "ours": ours, "conv2d": conv2d,
            "fft2d": fft2d, "corr": corr, "freqs": freqs, "times": times,
            "zxx_abs": jnp.abs(zxx), "x_back": x_back, "f_w": f_w, "pxx": pxx,
            "f_c": f_c, "pxy_abs": jnp.abs(pxy), "restored": restored, "taps": taps,
            "fit_losses": fit_losses, "g_wiener": g_wiener}


def test_signal_matches_jax():
    got, _ = check_against_jax("test_jax_sci_signal", program, rtol=2e-3, atol=2e-4)
    for mode in ("full", "same", "valid"):
        np.testing.assert_allclose(got[f"fftconv/{mode}"], got[f"conv/{mode}"], atol=1e-5)
    np.testing.assert_allclose(got["ours"], got["conv/full"], atol=1e-5)
    np.testing.assert_allclose(got["fft2d"], got["conv2d"], atol=1e-5)
    assert got["fit_losses"][-1] < 0.1 * got["fit_losses"][0]
