//! Per-worker process limits: a `pids` cgroup (v2 or v1) that every action
//! of one worker joins before it runs, so a fork bomb stops at
//! [`MAX_PROCESSES`] and every process an action left behind (a daemon, a
//! `setsid` escapee) is killed when it ends. Where no writable cgroup
//! exists, there is no limit and the build summary's sandbox note says so.

use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The most processes one action may have at once.
pub const MAX_PROCESSES: u32 = 4096;

/// The cgroup of one worker.
pub struct Cgroup {
    dir: PathBuf,
    procs: fs::File,
}

fn pids_root() -> Option<PathBuf> {
    let v2 = Path::new("/sys/fs/cgroup");
    if fs::read_to_string(v2.join("cgroup.controllers"))
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "pids"))
    {
        return Some(v2.to_path_buf());
    }
    let v1 = Path::new("/sys/fs/cgroup/pids");
    v1.join("cgroup.procs").exists().then(|| v1.to_path_buf())
}

impl Cgroup {
    /// A fresh cgroup for worker `slot` of this process, or why not.
    pub fn new(slot: usize) -> Result<Cgroup, String> {
        let root = pids_root().ok_or("no pids cgroup controller")?;
        let dir = root.join(format!("kiln-{}-{slot}", std::process::id()));
        let _ = fs::create_dir(&dir);
        fs::write(dir.join("pids.max"), MAX_PROCESSES.to_string())
            .map_err(|e| format!("cannot create a pids cgroup in `{}`: {e}", root.display()))?;
        let procs = fs::OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|e| format!("cannot open `{}`: {e}", dir.join("cgroup.procs").display()))?;
        Ok(Cgroup { dir, procs })
    }

    /// Make `cmd`'s process join this cgroup before it executes, so all
    /// it forks is counted and can be killed.
    pub fn enter(&self, cmd: &mut Command) -> std::io::Result<()> {
        let fd = self.procs.try_clone()?;
        // SAFETY: between fork and exec the closure only calls write(2) on
        // a descriptor opened before the fork, with a constant buffer: no
        // allocation, no lock, async-signal-safe. Writing "0" to
        // `cgroup.procs` moves the writing process.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || {
                let mut f = &fd;
                f.write_all(b"0")
            });
        }
        Ok(())
    }

    /// Kill every process left in the cgroup.
    pub fn kill_all(&self) {
        kill_cgroup(&self.dir);
    }

    /// The cgroup's directory (for [`kill_cgroup`] from another thread).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Kill every process in the cgroup at `dir` (SIGKILL, until none is left
/// or a second has passed).
pub fn kill_cgroup(dir: &Path) {
    for _ in 0..200 {
        let pids = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        let pids: Vec<i32> = pids.lines().filter_map(|l| l.trim().parse().ok()).collect();
        if pids.is_empty() {
            return;
        }
        for p in pids {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.kill_all();
        let _ = fs::remove_dir(&self.dir);
    }
}

/// Kill what is left of the actions of kiln processes that died (killed
/// mid-build, their commands may still run) and remove their cgroups
/// (named `kiln-<pid>-<slot>`).
pub fn remove_stale() {
    let Some(root) = pids_root() else {
        return;
    };
    let Ok(rd) = fs::read_dir(&root) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("kiln-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            kill_cgroup(&e.path());
            let _ = fs::remove_dir(e.path());
        }
    }
}
