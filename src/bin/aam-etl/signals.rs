//! The signals that stop a run (Ctrl-C's SIGINT, SIGTERM from `timeout`, systemd, `docker
//! stop` and Kubernetes, SIGHUP from a closed terminal): the first sets the cancel flag the
//! library checks, so the run removes its temporaries and publishes nothing; a second one
//! while that cleanup runs exits at once. The exit code is the shell's, 128 + the signal.

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::flag;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The signal that stopped the run, if any.
static CAUGHT: AtomicUsize = AtomicUsize::new(0);

/// Installs the handlers; returns the flag they set.
pub fn install() -> std::io::Result<Arc<AtomicBool>> {
    let cancel = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM, SIGHUP] {
        // Registered first, so that it sees the flag as the previous signal left it.
        flag::register_conditional_shutdown(sig, 128 + sig, Arc::clone(&cancel))?;
        flag::register_usize(sig, &CAUGHT, sig as usize)?;
        flag::register(sig, Arc::clone(&cancel))?;
    }
    Ok(cancel)
}

/// The signal that stopped the run: its name and the exit code it calls for.
pub fn caught() -> Option<(&'static str, u8)> {
    let sig = CAUGHT.load(Ordering::SeqCst) as i32;
    let name = match sig {
        SIGINT => "SIGINT (Ctrl-C)",
        SIGTERM => "SIGTERM",
        SIGHUP => "SIGHUP",
        _ => return None,
    };
    Some((name, 128 + sig as u8))
}
