//! Processes the suite starts itself (the Lambda runtime emulator and the
//! function binaries): every one is held by a [`Guard`] that kills it by PID
//! when dropped, and a SIGINT/SIGTERM handler kills whatever is still alive
//! before the suite exits, so nothing outlives `make bench`.

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::sync::Mutex;

static LIVE: Mutex<BTreeSet<u32>> = Mutex::new(BTreeSet::new());

pub struct Guard {
    child: Option<Child>,
}

impl Guard {
    pub fn spawn(mut cmd: Command) -> std::io::Result<Guard> {
        let child = cmd.spawn()?;
        if let Ok(mut live) = LIVE.lock() {
            live.insert(child.id());
        }
        Ok(Guard { child: Some(child) })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// true while the process has not exited.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            if let Ok(mut live) = LIVE.lock() {
                live.remove(&c.id());
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// On Ctrl-C or SIGTERM: kill the suite's own children by PID, then exit.
pub fn install_signal_handler() {
    tokio::spawn(async {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let pids: Vec<u32> = LIVE.lock().map(|l| l.iter().copied().collect()).unwrap_or_default();
        for pid in pids {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        }
        eprintln!("bench: interrupted");
        std::process::exit(130);
    });
}
