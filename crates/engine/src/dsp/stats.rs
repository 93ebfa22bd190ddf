//! Order statistics shared by the features.

/// A float the median can order: `f32` or `f64`.
pub trait Float: Copy + Into<f64> {
    fn total_cmp(&self, other: &Self) -> std::cmp::Ordering;
}

impl Float for f32 {
    fn total_cmp(&self, other: &Self) -> std::cmp::Ordering {
        f32::total_cmp(self, other)
    }
}

impl Float for f64 {
    fn total_cmp(&self, other: &Self) -> std::cmp::Ordering {
        f64::total_cmp(self, other)
    }
}

/// The median as numpy computes it (the mean of the two middle values for an even count), in
/// `f64`; `None` when `v` is empty. `v` is reordered. NaN sorts above every number.
pub fn median<T: Float>(v: &mut [T]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let (lower, &mut mid, _) = v.select_nth_unstable_by(n / 2, T::total_cmp);
    let hi: f64 = mid.into();
    if n % 2 == 1 {
        return Some(hi);
    }
    let lo = lower
        .iter()
        .map(|&x| x.into())
        .fold(f64::NEG_INFINITY, f64::max);
    Some(0.5 * (lo + hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_like_numpy() {
        assert_eq!(median::<f32>(&mut []), None);
        assert_eq!(median(&mut [3.0f32, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0f32, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut [4.0f64, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut [7.5f64]), Some(7.5));
        // The two middle values are averaged in f64.
        assert_eq!(
            median(&mut [1.0f32, 2.0f32.powi(30)]),
            Some(0.5 + 2.0f64.powi(29))
        );
    }
}
