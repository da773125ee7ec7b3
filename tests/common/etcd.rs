//! A real etcd on loopback for the integration harness: start, kill, restart, freeze, thaw.

use super::{free_port, http_get_url, signal_pid, temp_dir, wait_for, which};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A real etcd on loopback, killed on drop.
pub struct Etcd {
    /// Client port.
    pub port: u16,
    peer: u16,
    child: Child,
    dir: PathBuf,
}

impl Etcd {
    /// Starts etcd and waits until it answers.
    pub async fn start() -> Etcd {
        let dir = temp_dir("etcd");
        let (port, peer) = (free_port(), free_port());
        let child = Self::spawn(&dir, port, peer);
        let e = Etcd {
            port,
            peer,
            child,
            dir,
        };
        e.wait_ready().await;
        e
    }

    /// Starts etcd again on the same ports and data (after [`Etcd::kill`]).
    pub async fn restart(&mut self) {
        self.child = Self::spawn(&self.dir, self.port, self.peer);
        self.wait_ready().await;
    }

    async fn wait_ready(&self) {
        let url = format!("http://127.0.0.1:{}/health", self.port);
        wait_for("etcd to answer /health", Duration::from_secs(20), || {
            let url = url.clone();
            async move {
                http_get_url(&url)
                    .await
                    .filter(|(c, _)| *c == 200)
                    .map(|_| ())
            }
        })
        .await;
    }

    fn spawn(dir: &Path, port: u16, peer: u16) -> Child {
        let etcd = which("etcd").unwrap_or_else(|| {
            panic!("etcd is not installed: apt-get install etcd-server (run ci/install-deps.sh)")
        });
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("etcd.log"))
            .expect("etcd log");
        Command::new(etcd)
            .args(["--name", "it", "--data-dir"])
            .arg(dir.join("data"))
            .arg(format!("--listen-client-urls=http://127.0.0.1:{port}"))
            .arg(format!("--advertise-client-urls=http://127.0.0.1:{port}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
            .arg(format!(
                "--initial-advertise-peer-urls=http://127.0.0.1:{peer}"
            ))
            .arg(format!("--initial-cluster=it=http://127.0.0.1:{peer}"))
            .args(["--logger=zap", "--log-level=error"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn etcd")
    }

    /// Stops etcd (SIGKILL) without removing its data (for outage tests).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes etcd (SIGSTOP): its sockets stay open and nothing answers, like a stalled
    /// disk or a paused VM.
    pub fn freeze(&self) {
        signal_pid(self.child.id(), nix::sys::signal::Signal::SIGSTOP);
    }

    /// Resumes etcd after [`Etcd::freeze`] (SIGCONT).
    pub fn thaw(&self) {
        signal_pid(self.child.id(), nix::sys::signal::Signal::SIGCONT);
    }

    /// etcd's own log file (errors only).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("etcd.log")
    }

    /// `host:port` endpoint.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Reads every key under `prefix` (key → value) with etcd-client.
    pub async fn get_prefix(&self, prefix: &str) -> Vec<(String, String)> {
        let mut c = etcd_client::Client::connect([format!("http://{}", self.endpoint())], None)
            .await
            .expect("connect etcd");
        let r = c
            .get(prefix, Some(etcd_client::GetOptions::new().with_prefix()))
            .await
            .expect("range");
        r.kvs()
            .iter()
            .map(|kv| {
                (
                    String::from_utf8_lossy(kv.key()).into(),
                    String::from_utf8_lossy(kv.value()).into(),
                )
            })
            .collect()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
