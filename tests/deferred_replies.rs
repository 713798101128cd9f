//! Deferred replies in a gateway that keeps running after it answers (`wxgate serve`, or
//! `LateReplies::InBackground` in code): an upstream bot slower than the budget gets
//! the callback answered empty at once, and its reply goes out as one active message, also
//! when the platform retries meanwhile. Against a fake upstream bot and a fake WeChat API
//! on 127.0.0.1.

mod support;

use std::time::Duration;

use support::calls::{reply_of, timed_answer};
use support::fake_platform::FakePlatform;
use support::fake_upstream::{Behavior, FakeUpstream};
use support::sample::{header, sim_of, text_request};
use support::wait::eventually;
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::gateway::{Gateway, LateReplies};
use wxgate::simulate::{Answer, PlatformSim, SignedRequest, text_xml};

const UPSTREAM_SECRET: &str = "deferred-test-secret-0123456789";
const BUDGET_MS: u64 = 300;

struct Rig {
    gateway: Gateway,
    sim: PlatformSim,
    platform: FakePlatform,
    upstream: FakeUpstream,
}

/// A WeCom app answered by the upstream, able to send active messages (secret, agent_id).
fn config_text(platform: &FakePlatform, upstream: &FakeUpstream) -> String {
    support::fake_platform::forward_app_config(
        &format!("budget_ms = {BUDGET_MS}"),
        &platform.url(),
        &upstream.url(),
        UPSTREAM_SECRET,
        5000,
        "",
    )
}

fn rig(upstream: Behavior, deferred: bool) -> Rig {
    let platform = FakePlatform::start();
    let upstream = FakeUpstream::start(UPSTREAM_SECRET, upstream);
    let config = Config::parse(&config_text(&platform, &upstream)).unwrap();
    let sim = sim_of(&config, "demo");
    let late = if deferred {
        LateReplies::InBackground
    } else {
        LateReplies::Dropped
    };
    let gateway = Gateway::builder(&config)
        .late_replies(late)
        .build()
        .unwrap();
    Rig {
        gateway,
        sim,
        platform,
        upstream,
    }
}

fn delivery(sim: &PlatformSim, attempt: usize) -> SignedRequest {
    text_request(sim, "what is the weather?", 4242, &format!("n{attempt}"))
}

/// Delivers; the decrypted reply (`None`: empty) and how long the answer took.
async fn deliver(rig: &Rig, request: &SignedRequest) -> (Option<String>, Duration) {
    let (answer, took) = timed_answer(&rig.gateway, &rig.sim, request).await;
    (reply_of(answer), took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_within_the_budget_answers_passively() {
    let rig = rig(
        Behavior::text("sunny").after(Duration::from_millis(50)),
        true,
    );
    let (reply, _) = deliver(&rig, &delivery(&rig.sim, 0)).await;
    assert!(reply.expect("a passive reply").contains("sunny"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rig.platform.delivered(), 0, "no active message as well");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_bot_is_answered_empty_then_sent_once_despite_retries() {
    let rig = rig(
        Behavior::text("sunny later").after(Duration::from_millis(900)),
        true,
    );
    let (reply, took) = deliver(&rig, &delivery(&rig.sim, 0)).await;
    assert_eq!(reply, None);
    assert!(took < Duration::from_millis(BUDGET_MS + 300), "{took:?}");
    // The platform retries while the bot is still thinking: empty answers at once.
    for attempt in 1..=3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (reply, took) = deliver(&rig, &delivery(&rig.sim, attempt)).await;
        assert_eq!(reply, None, "retry {attempt}");
        // Not held for the budget, as a first delivery would be.
        assert!(
            took < Duration::from_millis(BUDGET_MS - 50),
            "retry {attempt} took {took:?}"
        );
    }
    assert!(
        eventually(Duration::from_secs(5), || rig.platform.delivered() == 1).await,
        "the late reply was not sent"
    );
    // Settle, then check nothing more arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent = rig.platform.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].touser, "lisi");
    assert_eq!(sent[0].agentid, Some(218));
    assert_eq!(sent[0].msgtype, "text");
    assert_eq!(sent[0].content, "sunny later");
    assert_eq!(
        rig.upstream.requests().len(),
        1,
        "one upstream call for four deliveries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_bot_that_fails_sends_nothing() {
    let rig = rig(
        Behavior::status(500).after(Duration::from_millis(600)),
        true,
    );
    let (reply, _) = deliver(&rig, &delivery(&rig.sim, 0)).await;
    assert_eq!(reply, None);
    assert!(
        eventually(Duration::from_secs(3), || rig.upstream.requests().len()
            == 1)
        .await
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(rig.platform.delivered(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_deferred_replies_a_late_bot_is_abandoned() {
    // As in Lambda, where the function is frozen once it answers.
    let rig = rig(
        Behavior::text("too late").after(Duration::from_millis(600)),
        false,
    );
    let (reply, took) = deliver(&rig, &delivery(&rig.sim, 0)).await;
    assert_eq!(reply, None);
    assert!(took < Duration::from_millis(BUDGET_MS + 150), "{took:?}");
    tokio::time::sleep(Duration::from_millis(900)).await;
    assert_eq!(rig.platform.delivered(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wxgate_serve_sends_a_late_reply_actively() {
    let platform = FakePlatform::start();
    let upstream = FakeUpstream::start(
        UPSTREAM_SECRET,
        Behavior::text("from the server").after(Duration::from_millis(700)),
    );
    let server = support::serve::Server::start(&config_text(&platform, &upstream));
    let sim = server.sim("demo");
    let request = delivery(&sim, 0);
    let (status, body) = server.send(&request).await;
    assert_eq!(sim.check(&request, status, &body).unwrap(), Answer::Empty);
    assert!(
        eventually(Duration::from_secs(5), || platform.delivered() == 1).await,
        "wxgate serve did not send the late reply"
    );
    assert_eq!(platform.sent()[0].content, "from the server");
}

/// An Official Account in plaintext mode: its bodies are not signed, so a late reply (which
/// goes to whichever follower the body names) is sent only when the app says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_account_sends_late_replies_only_when_configured() {
    let platform = FakePlatform::start();
    let upstream = FakeUpstream::start(
        UPSTREAM_SECRET,
        Behavior::text("later").after(Duration::from_millis(600)),
    );
    for (allowed, expected) in [(false, 0), (true, 1)] {
        let config = Config::parse(&support::fake_platform::mp_forward_app_config(
            &format!("budget_ms = {BUDGET_MS}"),
            &platform.url(),
            &upstream.url(),
            UPSTREAM_SECRET,
            "blog",
            &format!("plaintext_late_replies = {allowed}"),
        ))
        .unwrap();
        let sim = PlatformSim::new(config.app("blog").unwrap())
            .unwrap()
            .plaintext(true);
        let gateway = Gateway::builder(&config)
            .late_replies(LateReplies::InBackground)
            .build()
            .unwrap();
        let header = header("gh_blog", "oFollower", None);
        let request = sim
            .post(
                &text_xml(&header, "hi", 9000 + u64::from(allowed)),
                unix_now(),
                &format!("p{allowed}"),
            )
            .unwrap();
        let before = platform.delivered();
        let response = gateway.handle(request.to_callback()).await;
        assert_eq!(String::from_utf8_lossy(&response.body), "success");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(
            platform.delivered() - before,
            expected,
            "plaintext_late_replies = {allowed}"
        );
    }
}
