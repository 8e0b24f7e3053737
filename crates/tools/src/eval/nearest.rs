//! Nearest-neighbour distances between images, to tell memorised training images (distance ~0)
//! from new ones. Exact search over every pool image, on all cores. A distance is the root mean
//! square difference per value (per channel of each pixel), values scaled to `[0, 1]`.

/// Per-value RMSE under which an image counts as a copy of its nearest training image (issue 18's
/// memorisation check, on 32x32 RGB emoji).
pub const COPY_RMSE: f64 = 0.054;

/// For each image of `queries`, the RMSE to its nearest image in `pool`. Both hold images of
/// `pixels` bytes back to back.
pub fn nearest_distances(queries: &[u8], pool: &[u8], pixels: usize) -> Vec<f64> {
    if pixels == 0 || pool.len() < pixels {
        return vec![f64::INFINITY; queries.len() / pixels.max(1)];
    }
    let queries: Vec<&[u8]> = queries.chunks_exact(pixels).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(queries.len()).max(1);
    let per = queries.len().div_ceil(threads);
    let mut out = vec![0.0; queries.len()];
    std::thread::scope(|s| {
        for (qs, dst) in queries.chunks(per).zip(out.chunks_mut(per)) {
            s.spawn(move || {
                for (q, d) in qs.iter().zip(dst) {
                    *d = (nearest_sq(q, pool, pixels) as f64 / pixels as f64).sqrt() / 255.0;
                }
            });
        }
    });
    out
}

/// The smallest squared distance (in 0..=255 units) from `query` to an image of `pool`.
fn nearest_sq(query: &[u8], pool: &[u8], pixels: usize) -> u32 {
    let mut best = u32::MAX;
    for image in pool.chunks_exact(pixels) {
        // Rows of 64 values at a time, with an early exit once past the best so far.
        let mut sum = 0u32;
        for (a, b) in query.chunks(64).zip(image.chunks(64)) {
            sum += a.iter().zip(b).map(|(&x, &y)| (x as i32 - y as i32).pow(2) as u32).sum::<u32>();
            if sum >= best {
                break;
            }
        }
        best = best.min(sum);
    }
    best
}

/// The median of `values` (the mean of the middle two for an even count); NaN for none.
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { 0.5 * (v[m - 1] + v[m]) }
}

/// The share of `distances` under [`COPY_RMSE`].
pub fn copies(distances: &[f64]) -> f64 {
    distances.iter().filter(|&&d| d < COPY_RMSE).count() as f64 / distances.len().max(1) as f64
}

/// Images of `side x side x channels` values back to back, each shrunk by `k` with a box filter
/// (the mean of each `k x k` block, rounded), as an area resize makes them.
pub fn shrink(pixels: &[u8], side: usize, channels: usize, k: usize) -> Vec<u8> {
    if k == 1 {
        return pixels.to_vec();
    }
    let small = side / k;
    let mut out = Vec::with_capacity(pixels.len() / (k * k));
    for image in pixels.chunks_exact(side * side * channels) {
        for y in 0..small {
            for x in 0..small {
                for c in 0..channels {
                    let sum: u32 = (0..k * k)
                        .map(|j| image[((y * k + j / k) * side + x * k + j % k) * channels + c] as u32)
                        .sum();
                    out.push(((sum + (k * k / 2) as u32) / (k * k) as u32) as u8);
                }
            }
        }
    }
    out
}
