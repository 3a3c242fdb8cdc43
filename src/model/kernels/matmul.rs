//! Row-major matrix products through the `gemm` crate (0.19: AVX2/FMA kernels, and AVX-512
//! ones where the CPU has it, chosen at run time). dfdx 0.13 calls an older gemm once per
//! batch item; the fused ops call this once per layer, on all batch rows together.

/// A matrix operand: `rows × cols` elements with row and column strides (in elements).
#[derive(Clone, Copy)]
pub struct Mat {
    pub ptr: *const f32,
    pub rows: usize,
    pub cols: usize,
    pub row_stride: isize,
    pub col_stride: isize,
}

impl Mat {
    /// A row-major `rows × cols` matrix.
    pub fn new(data: &[f32], rows: usize, cols: usize) -> Self {
        assert!(data.len() >= rows * cols, "matrix buffer too short");
        Self::strided(data.as_ptr(), rows, cols, cols)
    }
    /// Rows `row_stride` apart (a head's columns inside a wider activation).
    pub fn strided(ptr: *const f32, rows: usize, cols: usize, row_stride: usize) -> Self {
        Self {
            ptr,
            rows,
            cols,
            row_stride: row_stride as isize,
            col_stride: 1,
        }
    }
    /// Rows `start..end` of this matrix.
    pub fn rows(self, start: usize, end: usize) -> Self {
        assert!(
            start <= end && end <= self.rows,
            "row range outside the matrix"
        );
        Self {
            // SAFETY (of the offset): the range lies inside the matrix.
            ptr: unsafe { self.ptr.offset(start as isize * self.row_stride) },
            rows: end - start,
            ..self
        }
    }
    /// The transpose, as a view of the same buffer.
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }
}

/// Below this many multiply-adds a product runs on one thread: splitting it costs more than
/// it saves (measured on 2 cores: 768×128×128 gains 1.9× from two threads, 64×32×64 nothing).
const PARALLEL_FROM: usize = 1 << 20;

/// `c = scale · a·b`, or `c += scale · a·b` when `accumulate`; `c` is `a.rows × b.cols` with
/// rows `c_stride` apart. `parallel` lets large products use every rayon thread.
///
/// # Safety
/// The pointers must cover the given shapes and strides, and `c` must not alias `a` or `b`.
pub unsafe fn gemm_raw(
    c: *mut f32,
    c_stride: usize,
    a: Mat,
    b: Mat,
    scale: f32,
    accumulate: bool,
    parallel: bool,
) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if m == 0 || n == 0 {
        return;
    }
    let threads = if parallel && m * n * k >= PARALLEL_FROM {
        gemm::Parallelism::Rayon(rayon::current_num_threads())
    } else {
        gemm::Parallelism::None
    };
    gemm::gemm(
        m,
        n,
        k,
        c,
        1,
        c_stride as isize,
        accumulate,
        a.ptr,
        a.col_stride,
        a.row_stride,
        b.ptr,
        b.col_stride,
        b.row_stride,
        1.0,
        scale,
        false,
        false,
        false,
        threads,
    );
}

/// Safe form for a whole row-major output buffer.
pub fn gemm_into(c: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    assert!(c.len() >= a.rows * b.cols, "output buffer too short");
    // SAFETY: `c` is an exclusive slice of the right size; `a` and `b` were built from slices.
    unsafe { gemm_raw(c.as_mut_ptr(), b.cols, a, b, 1.0, accumulate, true) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    fn data(len: usize, seed: u32) -> Vec<f32> {
        (0..len)
            .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 500.0 - 1.0)
            .collect()
    }

    #[test]
    fn products_and_transposed_views_match_a_naive_product() {
        // Big enough to take the parallel path, and odd sizes for the kernels' edges.
        for (m, k, n) in [(3, 5, 7), (130, 67, 129)] {
            let a = data(m * k, 1);
            let b = data(k * n, 2);
            let want = naive(&a, &b, m, k, n);
            let mut c = vec![0.0; m * n];
            gemm_into(&mut c, Mat::new(&a, m, k), Mat::new(&b, k, n), false);
            for (x, y) in c.iter().zip(&want) {
                assert!((x - y).abs() < 1e-4, "{x} vs {y}");
            }
            // aᵀ stored as k×m, bᵀ stored as n×k, accumulated onto a previous result.
            let at: Vec<f32> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
            let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
            gemm_into(
                &mut c,
                Mat::new(&at, k, m).t(),
                Mat::new(&bt, n, k).t(),
                true,
            );
            for (x, y) in c.iter().zip(&want) {
                assert!((x - 2.0 * y).abs() < 2e-4, "{x} vs {}", 2.0 * y);
            }
        }
    }
}
