//! The link to the fence against the real fence loop (`fence::process::run`) running in
//! this process: its task stands for the fence process, aborting it for `kill -9`.

use super::*;
use crate::fence::process::{run, FenceOptions};
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;

/// Fences started so far: how long each was armed from birth, and its task.
type Started = Arc<Mutex<Vec<(Option<Duration>, JoinHandle<()>)>>>;

fn in_process_starter(started: Started) -> Starter {
    Box::new(move |socket, data_dir, armed| {
        let opts = FenceOptions {
            socket: socket.to_path_buf(),
            data_dir: data_dir.to_path_buf(),
            armed,
        };
        let task = tokio::spawn(async move {
            let _ = run(opts).await;
        });
        started.lock().unwrap().push((armed, task));
        Ok(0)
    })
}

async fn ask(link: &mpsc::Sender<Request>, want: Want) -> Result<(), FenceClientError> {
    let (reply, answer) = oneshot::channel();
    link.send(Request { want, reply })
        .await
        .expect("the link runs");
    answer.await.expect("the link answers")
}

async fn wait_for_starts(started: &Started, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while started.lock().unwrap().len() < n {
        assert!(Instant::now() < deadline, "no fence #{n} started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn an_arm_keeps_its_deadline_across_a_reconnection() {
    let past = Want::ArmUntil(Instant::now() - Duration::from_secs(1));
    assert_eq!(past.command(), FenceCommand::Arm(Duration::ZERO));
    assert_eq!(past.armed_for(), Some(Duration::ZERO));
    let later = Want::ArmUntil(Instant::now() + Duration::from_secs(5));
    let left = later.armed_for().unwrap();
    assert!(left > Duration::from_secs(4) && left <= Duration::from_secs(5));
    assert_eq!(Want::Command(FenceCommand::Disarm).armed_for(), None);
}

#[tokio::test]
async fn a_fence_that_dies_while_armed_is_replaced_at_once_armed_with_what_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let started: Started = Arc::default();
    let link = Link::new(
        dir.path().join("fence.sock"),
        dir.path().join("data"),
        in_process_starter(started.clone()),
    );
    let link = spawn_link(link);

    ask(
        &link,
        Want::ArmUntil(Instant::now() + Duration::from_secs(30)),
    )
    .await
    .expect("armed");
    wait_for_starts(&started, 1).await;
    let first = started.lock().unwrap()[0].0.expect("started armed");
    assert!(first > Duration::from_secs(29), "{first:?}");

    // kill -9 of the fence: nobody asks, the link notices and arms a new one.
    started.lock().unwrap()[0].1.abort();
    wait_for_starts(&started, 2).await;
    let second = started.lock().unwrap()[1]
        .0
        .expect("the new fence is armed from birth");
    assert!(
        second <= first && second > Duration::from_secs(20),
        "what is left of the same deadline: {second:?} after {first:?}"
    );

    // The new fence answers the next arm; once disarmed, a dead fence is not replaced
    // until it is needed (the next command starts one, not armed).
    ask(
        &link,
        Want::ArmUntil(Instant::now() + Duration::from_secs(30)),
    )
    .await
    .expect("re-armed");
    ask(&link, Want::Command(FenceCommand::Disarm))
        .await
        .expect("disarmed");
    started.lock().unwrap()[1].1.abort();
    ask(&link, Want::Command(FenceCommand::Status))
        .await
        .expect("a fence answers");
    let starts = started.lock().unwrap();
    assert_eq!(starts.len(), 3, "one more fence, started for the command");
    assert_eq!(starts[2].0, None, "started for a status: not armed");
}
