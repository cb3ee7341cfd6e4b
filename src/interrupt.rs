//! interrupt: SIGINT and SIGTERM end a run cleanly. Both are blocked in every thread and waited
//! for by one thread of their own (`sigwait`), so no work happens inside a signal handler. On
//! either, the report being staged is removed — `--out` never holds half a report — the resume
//! checkpoint is made durable, a line says what happened, and the process exits with 130.
//!
//! `kill_point` is where the crash tests kill a run: with `KEYTRAIL_KILL_AT=<point>[:<n>]` in the
//! environment (tests only), the process sends itself SIGKILL there.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The staging directory of the report being written, if any.
static STAGING: Mutex<Option<PathBuf>> = Mutex::new(None);
/// The resume checkpoint of the run, if any.
static CHECKPOINT: Mutex<Option<PathBuf>> = Mutex::new(None);

/// Blocks SIGINT and SIGTERM and starts the thread that waits for them. Call it first thing in
/// `main`, before any other thread exists (threads inherit the blocked set).
pub fn install() {
    // SAFETY: plain libc calls on a zeroed, then initialised, signal set owned by this function
    // and then moved into the waiting thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut sig: libc::c_int = 0;
                if libc::sigwait(&set, &mut sig) == 0 {
                    stop(if sig == libc::SIGINT {
                        "SIGINT"
                    } else {
                        "SIGTERM"
                    });
                }
            })
            .expect("a thread can be started");
    }
}

fn stop(signal: &str) -> ! {
    let staged = STAGING.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(dir) = &staged {
        // Writers may still be adding files: try again if the first pass raced with one.
        for _ in 0..3 {
            if std::fs::remove_dir_all(dir).is_ok() || !dir.exists() {
                break;
            }
        }
    }
    let checkpoint = CHECKPOINT.lock().unwrap_or_else(|e| e.into_inner()).take();
    let resume = match checkpoint {
        Some(dir) => {
            // Journal lines are written whole with one write each; make them durable.
            if let Ok(f) = std::fs::File::open(dir.join("journal")) {
                let _ = f.sync_all();
            }
            format!(
                "; what was scanned is kept in {} — run again with --resume to go on",
                dir.display()
            )
        }
        None => String::new(),
    };
    eprintln!(
        "keytrail: stopped by {signal}; no report was written (the partial one is removed){resume}"
    );
    std::process::exit(130)
}

/// Remembers the staging directory, so that a signal removes it.
pub fn staging(dir: &Path) {
    *STAGING.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.to_path_buf());
}

/// Runs `f` (moving the staged report into place) with signals held off, and forgets the
/// staging directory: after this, the report is whole at `--out`.
pub fn committing<T>(f: impl FnOnce() -> T) -> T {
    let mut guard = STAGING.lock().unwrap_or_else(|e| e.into_inner());
    let out = f();
    *guard = None;
    out
}

/// Forgets the staging directory (it was removed).
pub fn unstaged() {
    *STAGING.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Remembers the resume checkpoint, so that a signal makes it durable and names it.
pub fn checkpoint(dir: &Path) {
    *CHECKPOINT.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.to_path_buf());
}

/// Forgets the resume checkpoint (it was removed).
pub fn no_checkpoint() {
    *CHECKPOINT.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Kills the process with SIGKILL when `KEYTRAIL_KILL_AT` names this point (`point`, or
/// `point:n` for the n-th time it is reached). For the crash tests; nothing happens otherwise.
pub fn kill_point(point: &str, n: u64) {
    static AT: std::sync::OnceLock<Option<(String, u64)>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        let v = std::env::var("KEYTRAIL_KILL_AT").ok()?;
        let (p, n) = v.split_once(':').unwrap_or((&v, "0"));
        Some((p.to_string(), n.parse().ok()?))
    });
    if let Some((p, at_n)) = at {
        if p == point && *at_n == n {
            // SAFETY: getpid and kill have no preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}

/// Whether process `pid` is alive (a staging directory named after a dead one is debris).
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}
