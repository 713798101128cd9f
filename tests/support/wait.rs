//! Waiting in an async test for something another task or process does.
#![allow(dead_code)]

use std::time::{Duration, Instant};

/// Waits until `done` holds, checking every 20 ms, for at most `limit`; whether it held.
pub async fn eventually(limit: Duration, done: impl Fn() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if done() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    done()
}
