//! Resource readings for the Rust client, in the units `bench/run.mjs` reports: CPU time of the
//! whole process or of the calling thread (µs, from `getrusage`), peak RSS (KB) and current RSS.

/// CPU time (user + system) in µs, of the whole process (`thread == false`) or of the calling
/// thread (`thread == true`).
pub fn cpu_us(thread: bool) -> f64 {
    let who = if thread { libc::RUSAGE_THREAD } else { libc::RUSAGE_SELF };
    let ru = rusage(who);
    let tv = |t: libc::timeval| t.tv_sec as f64 * 1e6 + t.tv_usec as f64;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Peak resident set size of the process so far, in KB.
pub fn peak_rss_kb() -> u64 {
    rusage(libc::RUSAGE_SELF).ru_maxrss as u64
}

/// Current resident set size, in KB (from `/proc/self/statm`; 0 when unavailable).
pub fn rss_kb() -> u64 {
    let page_kb = (unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64) / 1024;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        .map_or(0, |pages| pages * page_kb)
}

fn rusage(who: libc::c_int) -> libc::rusage {
    // SAFETY: getrusage only writes the struct it is given; a zeroed rusage is a valid value.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    }
}
