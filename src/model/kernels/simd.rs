//! Vectorisable element-wise math for the CPU kernels. libm's `tanhf`/`expf` are scalar calls
//! that LLVM cannot vectorise (they were a third of the training step); these are plain
//! arithmetic, compiled for AVX2+FMA when the CPU has it and chunked across cores with rayon.

use rayon::prelude::*;

/// exp(x) by range reduction to 2^k · e^r, |r| ≤ ln2/2, and a degree-6 polynomial
/// (relative error < 5e-7 over the f32 range).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // k = round(x / ln2) without a float-to-int cast (Rust's saturating cast does not
    // vectorise): adding 1.5·2^23 leaves k in the low mantissa bits.
    const SHIFT: f32 = 12_582_912.0;
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let k = t - SHIFT;
    let k_int = t.to_bits().wrapping_sub(SHIFT.to_bits()) as i32;
    // ln 2 split in two (Cody–Waite) so k·ln2 is exact enough for large |k|.
    let r = (x - k * 0.693_359_4) + k * 2.121_944_4e-4;
    let p = 1.0
        + r * (1.0
            + r * (0.5
                + r * (1.0 / 6.0 + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0))))));
    f32::from_bits(((k_int + 127) << 23) as u32) * p
}

/// tanh(x) = 1 − 2 / (e^{2x} + 1), exact to a few ulps away from 0 and saturating cleanly.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    // Both branches are computed and one is selected, so loops over tanh still vectorise.
    let far = 1.0 - 2.0 / (exp(2.0 * x) + 1.0);
    // Near zero the subtraction loses digits: tanh x ≈ x − x³/3.
    let near = x - x * x * x / 3.0;
    if x.abs() < 1e-3 {
        near
    } else {
        far
    }
}

// Reductions in eight independent lanes: a plain `iter().sum()` or a max fold must add in
// order, which keeps LLVM from vectorising it (and the loop around it).
const LANES: usize = 8;

/// Σ x.
#[inline(always)]
pub fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Σ a·b.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a[..n].chunks_exact(LANES), b[..n].chunks_exact(LANES));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// max x (−∞ for an empty slice).
#[inline(always)]
pub fn max(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    for c in chunks {
        for i in 0..LANES {
            acc[i] = acc[i].max(c[i]);
        }
    }
    acc.iter().fold(tail, |m, &v| m.max(v))
}

/// Σ exp(x − shift).
#[inline(always)]
pub fn sum_exp(xs: &[f32], shift: f32) -> f32 {
    let mut acc = [0.0f32; LANES];
    let chunks = xs.chunks_exact(LANES);
    let tail: f32 = chunks.remainder().iter().map(|&v| exp(v - shift)).sum();
    for c in chunks {
        for i in 0..LANES {
            acc[i] += exp(c[i] - shift);
        }
    }
    acc.iter().sum::<f32>() + tail
}

const GELU_C: f32 = 0.797_884_6; // sqrt(2/π)
const GELU_A: f32 = 0.044_715;

/// GELU, tanh approximation (GPT-2's "gelu_new"): 0.5 x (1 + tanh(c (x + a x³))).
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + tanh(GELU_C * (x + GELU_A * x * x * x)))
}

/// d gelu / dx.
#[inline(always)]
pub fn gelu_grad(x: f32) -> f32 {
    let t = tanh(GELU_C * (x + GELU_A * x * x * x));
    0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_A * x * x)
}

/// Elements per parallel task: big enough that rayon's overhead is noise.
pub const CHUNK: usize = 1 << 14;

macro_rules! avx2_variants {
    ($($(#[$doc:meta])* fn $name:ident($($arg:ident : $ty:ty),*) $body:block)*) => {$(
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn fast($($arg: $ty),*) $body
                if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                    // SAFETY: the CPU supports the features `fast` was compiled for.
                    return unsafe { fast($($arg),*) };
                }
            }
            $body
        }
    )*};
}

pub(crate) use avx2_variants;

avx2_variants! {
    fn gelu_slice(x: &[f32], y: &mut [f32]) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = gelu(x);
        }
    }
    fn gelu_backward_slice(x: &[f32], dy: &[f32], dx: &mut [f32]) {
        for ((dx, &x), &dy) in dx.iter_mut().zip(x).zip(dy) {
            *dx += dy * gelu_grad(x);
        }
    }
}

/// y = gelu(x), in parallel chunks.
pub fn gelu_forward(x: &[f32]) -> Vec<f32> {
    let mut y = super::pool::scratch(x.len()); // every element is written
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| gelu_slice(x, y));
    y
}

/// dx += dy · gelu'(x), in parallel chunks.
pub fn gelu_backward(x: &[f32], dy: &[f32], dx: &mut [f32]) {
    dx.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK).zip(dy.par_chunks(CHUNK)))
        .for_each(|(dx, (x, dy))| gelu_backward_slice(x, dy, dx));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_reductions_match_plain_ones() {
        for n in [0, 1, 7, 8, 9, 30] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.3).cos()).collect();
            let near = |x: f32, y: f32| (x - y).abs() <= 1e-5 * (1.0 + y.abs());
            assert!(near(sum(&a), a.iter().sum()));
            assert!(near(
                dot(&a, &b),
                a.iter().zip(&b).map(|(x, y)| x * y).sum()
            ));
            let m = a.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
            assert_eq!(max(&a), m);
            let se: f32 = a.iter().map(|v| (v - 0.5).exp()).sum();
            assert!(near(sum_exp(&a, 0.5), se));
        }
    }

    #[test]
    fn exp_and_tanh_match_libm() {
        for i in -2000..2000 {
            let x = i as f32 * 0.01;
            let (e, t) = (x.exp(), x.tanh());
            assert!(
                (exp(x) - e).abs() <= 5e-7 * e,
                "exp({x}): {} vs {e}",
                exp(x)
            );
            assert!((tanh(x) - t).abs() <= 1e-6, "tanh({x}): {} vs {t}", tanh(x));
        }
        assert_eq!(tanh(50.0), 1.0);
        assert_eq!(tanh(-50.0), -1.0);
    }

    #[test]
    fn gelu_gradient_matches_finite_differences() {
        for i in -60..60 {
            let x = i as f64 * 0.1 + 0.013;
            let h = 1e-3;
            let g = |x: f64| 0.5 * x * (1.0 + (0.7978845608 * (x + 0.044715 * x * x * x)).tanh());
            let numeric = (g(x + h) - g(x - h)) / (2.0 * h);
            assert!((gelu_grad(x as f32) as f64 - numeric).abs() < 1e-4, "x={x}");
            assert!((gelu(x as f32) as f64 - g(x)).abs() < 1e-5, "x={x}");
        }
    }
}
