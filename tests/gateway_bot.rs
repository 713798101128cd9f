//! The gateway in process with a bot written in code: the time budget, and what reaches a
//! bot. Time is paused (tokio test-util), so durations are exact, not measured.

mod support;

use std::sync::Mutex;
use std::time::Duration;

use support::calls::handle;
use support::sample::{sample_config, sim_of, text_request, wecom_header};
use wxgate::bot::{Bot, BotError, Inbound, Notice};
use wxgate::clock::unix_now;
use wxgate::gateway::Gateway;
use wxgate::reply::Reply;
use wxgate::simulate::{Answer, PlatformSim, location_xml};

/// Answers after a delay; records what it was asked.
struct SlowBot {
    delay: Duration,
    seen: Mutex<Vec<String>>,
}

impl Bot for SlowBot {
    async fn reply(&self, inbound: &Inbound<'_>) -> Result<Option<Reply>, BotError> {
        self.seen
            .lock()
            .unwrap()
            .push(format!("{}:{}", inbound.app, inbound.message.msg_type()));
        tokio::time::sleep(self.delay).await;
        Ok(Some(Reply::text("the bot's answer")))
    }

    async fn notice(&self, notice: &Notice<'_>) {
        let info = notice.info.info_type();
        self.seen
            .lock()
            .unwrap()
            .push(format!("{}:notice:{info}", notice.app));
    }
}

/// The official sample app with a 300 ms budget, answered by a [`SlowBot`].
fn setup(delay: Duration) -> (Gateway<SlowBot>, PlatformSim) {
    let config = sample_config("budget_ms = 300");
    let bot = SlowBot {
        delay,
        seen: Mutex::default(),
    };
    let sim = sim_of(&config, "demo");
    (Gateway::builder(&config).bot(bot).build().unwrap(), sim)
}

#[tokio::test(start_paused = true)]
async fn a_bot_inside_the_budget_is_answered() {
    let (gateway, sim) = setup(Duration::from_millis(250));
    let request = text_request(&sim, "hi", 5, "n");
    let started = tokio::time::Instant::now();
    let (status, body) = handle(&gateway, &request).await;
    let answer = sim.check(&request, status, &body).unwrap();
    assert!(
        matches!(&answer, Answer::Reply(xml) if xml.contains("the bot's answer")),
        "{answer:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_millis(250));
    assert_eq!(*gateway.bot().seen.lock().unwrap(), ["demo:text"]);
}

#[tokio::test(start_paused = true)]
async fn a_late_bot_becomes_an_empty_answer_at_the_budget_never_later() {
    let (gateway, sim) = setup(Duration::from_secs(30));
    let request = text_request(&sim, "hi", 5, "n");
    let started = tokio::time::Instant::now();
    let (status, body) = handle(&gateway, &request).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    // The answer comes at the 300 ms budget, not at the bot's 30 s.
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    assert_eq!(gateway.bot().seen.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn report_only_events_never_reach_the_bot_and_cost_no_budget() {
    let (gateway, sim) = setup(Duration::from_secs(30));
    let location = sim
        .post(
            &location_xml(&wecom_header(&sim, "lisi"), 1.0, 2.0),
            unix_now(),
            "n",
        )
        .unwrap();
    let started = tokio::time::Instant::now();
    let (status, body) = handle(&gateway, &location).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(gateway.bot().seen.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn refused_requests_never_reach_the_bot() {
    let (gateway, sim) = setup(Duration::ZERO);
    let mut forged = text_request(&sim, "forged", 5, "n");
    forged.query = forged.query.replace("nonce=n", "nonce=m");
    let (status, _) = handle(&gateway, &forged).await;
    assert_eq!(status, 401);
    assert!(gateway.bot().seen.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn platform_notices_reach_the_bot_and_are_answered_success() {
    let (gateway, sim) = setup(Duration::from_millis(10));
    let ticket = "<xml><SuiteId><![CDATA[ww4asffe99e54c0f4c]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType><TimeStamp>1403610513</TimeStamp><SuiteTicket><![CDATA[t1]]></SuiteTicket></xml>";
    let request = sim.post(ticket, unix_now(), "n").unwrap();
    let (status, body) = handle(&gateway, &request).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(
        *gateway.bot().seen.lock().unwrap(),
        ["demo:notice:suite_ticket"],
        "the notice reached the bot, and reply() was not asked"
    );
}
