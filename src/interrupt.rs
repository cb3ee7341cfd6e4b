//! interrupt: SIGINT and SIGTERM end a run cleanly. Both are blocked in every thread and waited
//! for by one thread of their own (`sigwait`), so no work happens inside a signal handler. On
//! either, the report being staged is removed — `--out` never holds half a report — a line says
//! what happened, and the process exits with 130.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The staging directory of the report being written, if any.
static STAGING: Mutex<Option<PathBuf>> = Mutex::new(None);

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
    eprintln!("keytrail: stopped by {signal}; no report was written (the partial one is removed)");
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
