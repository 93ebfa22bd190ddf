//! Process CPU time (`getrusage`, Unix) and peak memory (`/proc`, Linux); `None` where they
//! cannot be read.

/// User + system CPU seconds of `who` (`RUSAGE_SELF` or `RUSAGE_CHILDREN`).
#[cfg(unix)]
fn rusage_cpu_seconds(who: libc::c_int) -> Option<f64> {
    // SAFETY: `rusage` is plain old data, so all-zero is a valid value, and `getrusage` only
    // writes into the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable `rusage`.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return None;
    }
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    Some(secs(ru.ru_utime) + secs(ru.ru_stime))
}

/// User + system CPU seconds of this process so far.
pub fn cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    return rusage_cpu_seconds(libc::RUSAGE_SELF);
    #[cfg(not(unix))]
    return None;
}

/// User + system CPU seconds of the children this process has waited for (the worker
/// processes of a run, once they have exited).
pub fn children_cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    return rusage_cpu_seconds(libc::RUSAGE_CHILDREN);
    #[cfg(not(unix))]
    return None;
}

/// Peak resident set size in bytes (VmHWM, which [`reset_peak_rss`] can reset, unlike
/// `getrusage`'s `ru_maxrss`).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Resets the peak RSS so the next phase is measured alone: writing 5 to `clear_refs` resets
/// VmHWM (Linux >= 4.0). An error means the next peak also covers what came before.
pub fn reset_peak_rss() -> std::io::Result<()> {
    std::fs::write("/proc/self/clear_refs", "5")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work() {
        let before = cpu_seconds();
        let mut x = 0u64;
        let t0 = std::time::Instant::now();
        while t0.elapsed() < std::time::Duration::from_millis(50) {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(std::hint::black_box(1));
        }
        std::hint::black_box(x);
        let after = cpu_seconds();
        if cfg!(unix) {
            let (b, a) = (before.unwrap(), after.unwrap());
            assert!(a > b, "{b} -> {a}");
            assert!(children_cpu_seconds().unwrap() >= 0.0);
        }
    }
}
