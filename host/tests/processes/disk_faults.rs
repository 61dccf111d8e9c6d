//! Storage faults beyond SIGKILL (issue 15), on filesystems the tests mount themselves (as root;
//! where mounting is not allowed a test says so and does nothing):
//! - a follower whose disk fills up exits non-zero with the cause while the other two serve on,
//!   and once space is back it restarts, catches up and agrees with them;
//! - a crash that loses every write the kernel had not yet put on the disk (SIGKILL keeps the page
//!   cache, so it cannot catch a missing fsync): the node's data directory lives on an ext4 image,
//!   and the "disk after the crash" is a copy of that image taken the moment the node dies. Every
//!   acknowledged write must be in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use iroh_raft::Client;

use crate::support::{
    admin_key, eventually, free_port, get, held, put, spawn, spawn_logging, state_hashes_agree,
    wait_for_voters,
};

/// A filesystem a test mounted: unmounted (and its loop device detached) when dropped.
struct Mounted {
    point: PathBuf,
    loop_device: Option<String>,
}

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Mounted {
    /// A tmpfs of `size` (`24m`) at `point`, or `None` (said on stderr) where mounting is not
    /// allowed.
    fn tmpfs(point: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(point).expect("mount point");
        let target = point.to_str().expect("a UTF-8 path");
        match run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                target,
            ],
        ) {
            Ok(_) => Some(Self {
                point: point.to_path_buf(),
                loop_device: None,
            }),
            Err(error) => {
                eprintln!("skipped: this test mounts a tmpfs, which needs root ({error})");
                None
            }
        }
    }

    /// The ext4 image `image` through a loop device at `point`, or `None` where that is not
    /// allowed.
    fn image(image: &Path, point: &Path) -> Option<Self> {
        std::fs::create_dir_all(point).expect("mount point");
        let device = match run(
            "losetup",
            &["--find", "--show", image.to_str().expect("a UTF-8 path")],
        ) {
            Ok(device) => device,
            Err(error) => {
                eprintln!("skipped: this test needs a loop device, which needs root ({error})");
                return None;
            }
        };
        let mounted = Self {
            point: point.to_path_buf(),
            loop_device: Some(device.clone()),
        };
        // Journal commits only when something syncs, so a write nobody synced stays in memory.
        run(
            "mount",
            &[
                "-o",
                "commit=600",
                &device,
                point.to_str().expect("a UTF-8 path"),
            ],
        )
        .expect("mount the image");
        Some(mounted)
    }

    /// Grows a tmpfs to `size`: space is back.
    fn grow(&self, size: &str) {
        run(
            "mount",
            &[
                "-o",
                &format!("remount,size={size}"),
                self.point.to_str().expect("a UTF-8 path"),
            ],
        )
        .expect("grow the tmpfs");
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let point = self.point.to_string_lossy().to_string();
        if let Err(error) = run("umount", &[&point]) {
            eprintln!("{error}");
            let _ = run("umount", &["--lazy", &point]);
        }
        if let Some(device) = &self.loop_device {
            let _ = run("losetup", &["--detach", device]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_out_of_disk_space_exits_the_others_serve_and_it_recovers_once_space_is_back() {
    let root = tempfile::tempdir().expect("temp dir");
    let Some(disk) = Mounted::tmpfs(&root.path().join("small"), "48m") else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(240), async {
        let first = spawn(&root.path().join("n1"), free_port(), &["--init".into()]);
        let ticket = first.ticket.clone().expect("ticket");
        let join = ["--join".to_string(), ticket];
        let second = spawn(&root.path().join("n2"), free_port(), &join);
        let log = root.path().join("n3.log");
        let mut third = spawn_logging(
            &disk.point.join("n3"),
            free_port(),
            &join,
            Stdio::from(std::fs::File::create(&log).expect("log file")),
        );
        wait_for_voters(&first, 3).await;
        let client = Client::connect_with_key(admin_key(), first.addr.clone())
            .await
            .expect("connect");

        // Writes of 256 KiB until the third node's disk is full: a quorum of two answers each.
        let value = "v".repeat(256 * 1024);
        let mut acked = Vec::new();
        let code = loop {
            if let Some(status) = third.child.try_wait().expect("poll the node") {
                break status.code();
            }
            assert!(
                acked.len() < 2_000,
                "2,000 writes of 256 KiB and the 48 MiB disk never filled"
            );
            let key = format!("fill/{}", acked.len());
            let (_, outcome) = client
                .write(put(&key, &value))
                .await
                .expect("two of three nodes answer every write");
            outcome.expect("the put applies");
            acked.push(key);
        };
        let said = std::fs::read_to_string(&log).expect("the node's log");
        println!(
            "the third node exited with {code:?} after {} writes; its last words:\n{}",
            acked.len(),
            said.lines().rev().take(5).collect::<Vec<_>>().join("\n")
        );
        assert_eq!(
            code,
            Some(1),
            "a full disk is a fatal storage error, exit 1"
        );
        let last_words = said
            .lines()
            .find(|line| line.starts_with("error: "))
            .expect("the node says why it exits");
        assert!(
            last_words.contains("is full") && last_words.contains("free space there"),
            "bug: the node exited saying only that fjall was poisoned, not that its disk is full: \
             {last_words}"
        );

        // The other two serve on.
        for n in 0..20 {
            let key = format!("after/{n}");
            let (_, outcome) = client.write(put(&key, "x")).await.expect("write");
            outcome.expect("the put applies");
            acked.push(key);
        }

        disk.grow("512m");
        let third = third.restart();
        let back = Client::connect_with_key(admin_key(), third.addr.clone())
            .await
            .expect("connect to the restarted node");
        let last = acked.last().cloned().expect("a write");
        eventually(
            Duration::from_secs(90),
            "the restarted node to catch up",
            || async { held(&back, &last).await.is_some_and(|v| v.is_some()) },
        )
        .await;
        for key in &acked {
            assert!(
                held(&back, key).await.is_some_and(|v| v.is_some()),
                "the restarted node lacks {key}"
            );
        }
        state_hashes_agree(vec![
            first.addr.clone(),
            second.addr.clone(),
            third.addr.clone(),
        ])
        .await;
        drop((first, second, third));
    })
    .await
    .expect("the test finished in time");
    drop(disk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_crash_that_loses_every_unsynced_write() {
    let root = tempfile::tempdir().expect("temp dir");
    let image = root.path().join("disk.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(256 << 20))
        .expect("image file");
    if let Err(error) = run(
        "mkfs.ext4",
        &["-q", "-F", image.to_str().expect("a UTF-8 path")],
    ) {
        eprintln!("skipped: this test needs mkfs.ext4 ({error})");
        return;
    }
    let Some(disk) = Mounted::image(&image, &root.path().join("disk")) else {
        return;
    };
    tokio::time::timeout(Duration::from_secs(180), async {
        let bind = free_port();
        let mut node = spawn(&disk.point.join("n1"), bind, &["--init".into()]);
        let client = Client::connect_with_key(admin_key(), node.addr.clone())
            .await
            .expect("connect");
        let mut acked = Vec::new();
        for n in 0..300 {
            let key = format!("k{n}");
            let (_, outcome) = client
                .write(put(&key, &format!("value {n}")))
                .await
                .expect("write");
            outcome.expect("the put applies");
            acked.push(key);
        }
        // Proof that the crash below loses what nobody synced: a file written and never synced.
        let canary = disk.point.join("canary");
        std::fs::write(&canary, b"never synced").expect("write the canary");
        node.kill();
        // The disk after the crash: what reached the block device, without the page cache.
        let crashed = root.path().join("crashed.img");
        std::fs::copy(&image, &crashed).expect("copy the image");
        drop(disk);
        let after = Mounted::image(&crashed, &root.path().join("after")).expect("mount the copy");
        let survived = std::fs::read(after.point.join("canary")).unwrap_or_default();
        assert_ne!(
            survived, b"never synced",
            "the canary was never synced, yet it survived the crash: this crash loses nothing, so \
             the test would prove nothing"
        );

        let again = spawn(&after.point.join("n1"), bind, &node.extra);
        let client = Client::connect_with_key(admin_key(), again.addr.clone())
            .await
            .expect("connect after the crash");
        eventually(
            Duration::from_secs(60),
            "a leader after the crash",
            || async { client.status().await.is_ok_and(|s| s.leader.is_some()) },
        )
        .await;
        for (n, key) in acked.iter().enumerate() {
            assert_eq!(
                get(&client, key).await,
                Some(format!("value {n}").into_bytes()),
                "the acknowledged put of {key} did not survive the crash"
            );
        }
        drop(again);
        drop(after);
    })
    .await
    .expect("the test finished in time");
}
