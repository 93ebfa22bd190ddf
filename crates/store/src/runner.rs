//! Who holds a claim, and whether that process is still alive.

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one runner (one `sonoprint run` process, or one claimer inside it): host, pid and
/// a random suffix, e.g. `studio:4242:9f3a01c2`. The host and pid let another runner on the same
/// machine see at once that a runner was killed; the suffix keeps a reused pid (or two runners
/// in one process) apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunnerId {
    host: String,
    pid: u32,
    id: String,
}

impl RunnerId {
    /// A new runner id for this process (a fresh suffix on every call).
    pub fn for_this_process() -> RunnerId {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default(),
        );
        let suffix = format!("{:08x}", h.finish() as u32);
        RunnerId::from_parts(&hostname(), std::process::id(), &suffix)
    }

    /// A runner id from its parts (for tests and tools that inspect claims).
    pub fn from_parts(host: &str, pid: u32, suffix: &str) -> RunnerId {
        RunnerId {
            host: host.to_string(),
            pid,
            id: format!("{host}:{pid}:{suffix}"),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }
}

impl fmt::Display for RunnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// This machine's name, as claims and runs record it.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Whether process `pid` on this machine is still running. A zombie (killed, not yet reaped)
/// counts as dead. Where this cannot be told (not Linux, or no permission), the answer is
/// "alive", so the claim lives until its lease expires: never a false "dead".
pub fn pid_alive(pid: u32) -> bool {
    if !cfg!(target_os = "linux") {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // `pid (comm) S ...`: the state follows the last ')' (comm may contain one).
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].trim_start().chars().next());
            !matches!(state, Some('Z') | Some('X'))
        }
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}
