//! The Fréchet distance between two feature sets, each summarised by its mean and covariance:
//!
//! `FD = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1^{1/2} S2 S1^{1/2})^{1/2})`
//!
//! (FID's formula, here on the classifier's features). Everything in f64; the square roots come
//! from a cyclic Jacobi eigen solver for symmetric matrices, so no linear-algebra dependency.

/// Mean and covariance of `n` feature vectors of `dim` values.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub n: usize,
    pub dim: usize,
    pub mean: Vec<f64>,
    /// `[dim, dim]`, row-major; unbiased (divides by `n - 1`, as numpy's `cov`).
    pub cov: Vec<f64>,
}

impl Stats {
    /// From `features` (`[n, dim]`, row-major). `None` if there are fewer than two rows.
    pub fn from_features(features: &[f32], dim: usize) -> Option<Stats> {
        let n = features.len().checked_div(dim).unwrap_or(0);
        if n < 2 {
            return None;
        }
        let mut mean = vec![0.0f64; dim];
        for row in features.chunks_exact(dim) {
            mean.iter_mut().zip(row).for_each(|(m, &x)| *m += x as f64);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = vec![0.0f64; dim * dim];
        let mut centred = vec![0.0f64; dim];
        for row in features.chunks_exact(dim) {
            centred.iter_mut().zip(row.iter().zip(&mean)).for_each(|(c, (&x, m))| *c = x as f64 - m);
            for i in 0..dim {
                let ci = centred[i];
                if ci == 0.0 {
                    continue;
                }
                for j in i..dim {
                    cov[i * dim + j] += ci * centred[j];
                }
            }
        }
        for i in 0..dim {
            for j in i..dim {
                let v = cov[i * dim + j] / (n - 1) as f64;
                cov[i * dim + j] = v;
                cov[j * dim + i] = v;
            }
        }
        Some(Stats { n, dim, mean, cov })
    }
}

/// The Fréchet distance between two Gaussians given by `a` and `b` (same `dim`).
///
/// # Panics
/// If the dimensions differ.
pub fn frechet_distance(a: &Stats, b: &Stats) -> f64 {
    assert_eq!(a.dim, b.dim, "feature dimensions differ");
    let d = a.dim;
    let mean_term: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y) * (x - y)).sum();
    let trace = |m: &[f64]| (0..d).map(|i| m[i * d + i]).sum::<f64>();
    // Tr((S1^{1/2} S2 S1^{1/2})^{1/2}) = sum of the square roots of the eigenvalues of the
    // symmetric PSD matrix S1^{1/2} S2 S1^{1/2}.
    let root = sqrt_psd(&a.cov, d);
    let inner = symmetrize(&matmul(&matmul(&root, &b.cov, d), &root, d), d);
    let (values, _) = symmetric_eigen(&inner, d);
    let cross: f64 = values.iter().map(|&v| v.max(0.0).sqrt()).sum();
    (mean_term + trace(&a.cov) + trace(&b.cov) - 2.0 * cross).max(0.0)
}

/// The PSD square root of a symmetric matrix (negative eigenvalues, from rounding, count as 0).
pub fn sqrt_psd(m: &[f64], n: usize) -> Vec<f64> {
    let (values, vectors) = symmetric_eigen(m, n);
    let mut out = vec![0.0; n * n];
    for (k, &v) in values.iter().enumerate() {
        let s = v.max(0.0).sqrt();
        if s == 0.0 {
            continue;
        }
        for i in 0..n {
            let vi = vectors[i * n + k] * s;
            for j in 0..n {
                out[i * n + j] += vi * vectors[j * n + k];
            }
        }
    }
    out
}

/// Eigenvalues and eigenvectors of a symmetric `n x n` matrix by cyclic Jacobi rotations:
/// `(values, vectors)` with eigenvector `k` in column `k` of `vectors` (row-major), so that
/// `m = V diag(values) V^T`. Converges quadratically; stops when the off-diagonal mass is below
/// `1e-22` of the total, or after 100 sweeps.
pub fn symmetric_eigen(m: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(m.len(), n * n, "not an n x n matrix");
    let mut a = m.to_vec();
    let mut v = vec![0.0; n * n];
    (0..n).for_each(|i| v[i * n + i] = 1.0);
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _ in 0..100 {
        let off: f64 =
            (0..n).map(|i| (0..n).filter(|&j| j != i).map(|j| a[i * n + j].powi(2)).sum::<f64>()).sum();
        if off <= 1e-22 * total || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation that zeroes a[p][q] (Golub & Van Loan, the symmetric Schur step).
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

/// `a * b` for `n x n` row-major matrices.
fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            if aik == 0.0 {
                continue;
            }
            for j in 0..n {
                out[i * n + j] += aik * b[k * n + j];
            }
        }
    }
    out
}

/// `(m + m^T) / 2`: removes the rounding asymmetry of a product that is symmetric in theory.
fn symmetrize(m: &[f64], n: usize) -> Vec<f64> {
    let mut out = m.to_vec();
    for i in 0..n {
        for j in 0..i {
            let v = 0.5 * (m[i * n + j] + m[j * n + i]);
            out[i * n + j] = v;
            out[j * n + i] = v;
        }
    }
    out
}
