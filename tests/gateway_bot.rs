//! The gateway in process with a bot written in code: the time budget, and what reaches a
//! bot. Time is paused (tokio test-util), so durations are exact, not measured.

use std::sync::Mutex;
use std::time::Duration;

use wxgate::bot::{Bot, BotError, Inbound, Notice};
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::gateway::Gateway;
use wxgate::reply::Reply;
use wxgate::simulate::{
    Answer, Header, OFFICIAL_SAMPLE_APP, PlatformSim, SignedRequest, location_xml, text_xml,
};

/// The official sample app with a 300 ms budget.
fn config() -> Config {
    Config::parse(&format!(
        "[gateway]\nbudget_ms = 300\n{OFFICIAL_SAMPLE_APP}"
    ))
    .unwrap()
}

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

fn setup(delay: Duration) -> (Gateway<SlowBot>, PlatformSim) {
    let config = config();
    let bot = SlowBot {
        delay,
        seen: Mutex::default(),
    };
    let sim = PlatformSim::new(config.app("demo").unwrap()).unwrap();
    (Gateway::builder(&config).bot(bot).build().unwrap(), sim)
}

async fn call(gateway: &Gateway<SlowBot>, request: &SignedRequest) -> (u16, String) {
    let response = gateway.handle(request.to_callback()).await;
    (
        response.status.as_u16(),
        String::from_utf8(response.body.to_vec()).unwrap(),
    )
}

fn header(sim: &PlatformSim) -> Header<'_> {
    Header {
        to: sim.receive_id(),
        from: "lisi",
        create_time: unix_now(),
        agent_id: Some(218),
    }
}

fn text_request(sim: &PlatformSim, text: &str) -> SignedRequest {
    sim.post(&text_xml(&header(sim), text, 5), unix_now(), "n")
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_bot_inside_the_budget_is_answered() {
    let (gateway, sim) = setup(Duration::from_millis(250));
    let request = text_request(&sim, "hi");
    let started = tokio::time::Instant::now();
    let (status, body) = call(&gateway, &request).await;
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
    let request = text_request(&sim, "hi");
    let started = tokio::time::Instant::now();
    let (status, body) = call(&gateway, &request).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    // The answer comes at the 300 ms budget, not at the bot's 30 s.
    assert_eq!(started.elapsed(), Duration::from_millis(300));
    assert_eq!(gateway.bot().seen.lock().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn report_only_events_never_reach_the_bot_and_cost_no_budget() {
    let (gateway, sim) = setup(Duration::from_secs(30));
    let location = sim
        .post(&location_xml(&header(&sim), 1.0, 2.0), unix_now(), "n")
        .unwrap();
    let started = tokio::time::Instant::now();
    let (status, body) = call(&gateway, &location).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert!(gateway.bot().seen.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn refused_requests_never_reach_the_bot() {
    let (gateway, sim) = setup(Duration::ZERO);
    let mut forged = text_request(&sim, "forged");
    forged.query = forged.query.replace("nonce=n", "nonce=m");
    let (status, _) = call(&gateway, &forged).await;
    assert_eq!(status, 401);
    assert!(gateway.bot().seen.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn platform_notices_reach_the_bot_and_are_answered_success() {
    let (gateway, sim) = setup(Duration::from_millis(10));
    let ticket = "<xml><SuiteId><![CDATA[ww4asffe99e54c0f4c]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType><TimeStamp>1403610513</TimeStamp><SuiteTicket><![CDATA[t1]]></SuiteTicket></xml>";
    let request = sim.post(ticket, unix_now(), "n").unwrap();
    let (status, body) = call(&gateway, &request).await;
    assert_eq!((status, body.as_str()), (200, "success"));
    assert_eq!(
        *gateway.bot().seen.lock().unwrap(),
        ["demo:notice:suite_ticket"],
        "the notice reached the bot, and reply() was not asked"
    );
}
