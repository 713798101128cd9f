//! The platform's side of a load run: N distinct text messages, signed and encrypted as
//! WeChat sends them, delivered concurrently to `wxgate serve`, with the platform's retries
//! (same message, new nonce, timestamp and signature) after a failed try, and duplicates at
//! once or after the first answer. Every answer is checked and decrypted as the platform
//! does; [`Run::report`] then tallies what each message got, and the figures.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use wxgate::clock::unix_now;
use wxgate::config::Config;
use wxgate::simulate::{Answer, PlatformSim, text_xml};

use super::bot::bot_reply;
use crate::support::sample::{header, sim_of};

/// The text every rule-answered message carries, and what the rule answers.
pub const RULE_TEXT: &str = "help";
pub const RULE_REPLY: &str = "rule help";

/// The shape of one run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Distinct messages.
    pub messages: usize,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Messages started per second; `None`: as fast as `concurrency` allows.
    pub rate: Option<f64>,
    /// Every `rule_every`-th message is answered by a local rule (0: none).
    pub rule_every: usize,
    /// Every `slow_every`-th message gets its bot reply after the budget (0: none).
    pub slow_every: usize,
    /// Every `mp_every`-th message goes to the Official Account `shop` (0: all to WeCom).
    pub mp_every: usize,
    /// Percent of messages delivered a second time at the same moment.
    pub dup_at_once_pct: u64,
    /// Percent of messages delivered again after the first answer (as if it was lost).
    pub dup_later_pct: u64,
    /// The gateway's `budget_ms`.
    pub budget_ms: u64,
    /// How long the platform waits for an answer before it counts the try as failed.
    pub platform_timeout: Duration,
    /// The pause before the platform's next try after a failed one.
    pub retry_pause: Duration,
    /// Tries per delivery, the first included (WeChat: three).
    pub tries: u32,
    /// The whole run, sending and answers, must end within this.
    pub deadline: Duration,
}

/// What a message is answered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The upstream bot, within the budget: a passive reply.
    Bot,
    /// A local rule (keywords): the bot never runs.
    Rule,
    /// The upstream bot, after the budget: answered empty, then a late reply.
    Slow,
}

/// One message of the run.
#[derive(Debug, Clone)]
pub struct Message {
    pub app: &'static str,
    pub msg_id: u64,
    pub kind: Kind,
    /// The sender; a late reply goes to them.
    pub from: String,
    /// The message as the platform built it, the same for every delivery.
    pub xml: String,
    pub dup_at_once: bool,
    pub dup_later: bool,
}

impl Message {
    /// The text content the message's answers must carry, if passive.
    pub fn expected(&self) -> String {
        match self.kind {
            Kind::Rule => RULE_REPLY.to_owned(),
            Kind::Bot | Kind::Slow => bot_reply(self.app, self.msg_id),
        }
    }
}

/// Which delivery of a message a request was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// The first delivery, or its retry number `n` after a failed try.
    Try(u32),
    /// A duplicate sent together with the first.
    AtOnce,
    /// A duplicate sent after the first was answered.
    Later,
}

/// What one request got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200 with an answer the platform accepts: `None` empty, else the decrypted reply.
    Answered(Option<String>),
    /// Another status.
    Status(u16),
    /// A 200 the platform would refuse (signature, encryption, XML).
    Invalid(String),
    /// No answer within the platform's timeout.
    TimedOut,
    /// No connection, or the connection broken.
    Unreachable,
}

/// One request.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub message: usize,
    pub attempt: Attempt,
    /// When it was sent, from the start of the run.
    pub sent_at: Duration,
    pub latency: Duration,
    pub outcome: Outcome,
}

/// A run's messages, the platform for each app, and what it delivered.
pub struct Run {
    pub plan: Plan,
    pub messages: Vec<Message>,
    sims: HashMap<&'static str, PlatformSim>,
    /// Messages started so far (for faults timed to the run's progress).
    pub started: Arc<AtomicUsize>,
    pub deliveries: Vec<Delivery>,
    pub wall: Duration,
    /// When [`deliver`](Self::deliver) started.
    run_start: Option<Instant>,
}

/// A number in 0..100 from `i`, scattered, the same in every run.
fn percentile_of(i: usize, salt: u64) -> u64 {
    let x = (i as u64 ^ salt).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 32) % 100
}

impl Run {
    /// The messages of `plan`, for the apps `demo` (WeCom) and `shop` (MP) of `config`.
    /// `msg_base` offsets the MsgIds, so two runs on one table never share a message.
    pub fn new(plan: Plan, config: &Config, msg_base: u64) -> Run {
        let sims: HashMap<&'static str, PlatformSim> = [
            ("demo", sim_of(config, "demo")),
            ("shop", sim_of(config, "shop")),
        ]
        .into_iter()
        .collect();
        let messages = (0..plan.messages)
            .map(|i| {
                let every = |n: usize| n > 0 && i % n == n - 1;
                let app = if every(plan.mp_every) { "shop" } else { "demo" };
                let kind = if every(plan.rule_every) {
                    Kind::Rule
                } else if every(plan.slow_every) {
                    Kind::Slow
                } else {
                    Kind::Bot
                };
                let msg_id = msg_base + i as u64;
                let from = format!("user{}", i % 97);
                let content = match kind {
                    Kind::Rule => RULE_TEXT.to_owned(),
                    Kind::Slow => format!("slow question {i}"),
                    Kind::Bot => format!("question {i}"),
                };
                let sim = &sims[app];
                let xml = match app {
                    "demo" => {
                        let h = header(sim.receive_id(), &from, sim.agent_id());
                        text_xml(&h, &content, msg_id)
                    }
                    _ => text_xml(&header("gh_loadtest0001", &from, None), &content, msg_id),
                };
                Message {
                    app,
                    msg_id,
                    kind,
                    from,
                    xml,
                    dup_at_once: percentile_of(i, 1) < plan.dup_at_once_pct,
                    dup_later: percentile_of(i, 2) < plan.dup_later_pct,
                }
            })
            .collect();
        Run {
            plan,
            messages,
            sims,
            started: Arc::new(AtomicUsize::new(0)),
            deliveries: Vec::new(),
            wall: Duration::ZERO,
            run_start: None,
        }
    }

    /// Delivers every message to the gateway at `base`, with retries and duplicates, and
    /// keeps what each request got. Panics when the run outlives its deadline.
    pub async fn deliver(&mut self, base: &str) {
        let client = reqwest::Client::builder()
            .timeout(self.plan.platform_timeout)
            .connect_timeout(Duration::from_secs(1))
            .pool_max_idle_per_host(self.plan.concurrency)
            .build()
            .expect("an HTTP client");
        let started_at = Instant::now();
        self.run_start = Some(started_at);
        let shared = Arc::new(Shared {
            run_start: started_at,
            client,
            base: base.to_owned(),
            plan: self.plan.clone(),
            permits: Semaphore::new(self.plan.concurrency),
            sims: self.sims.clone(),
        });
        let mut tasks = tokio::task::JoinSet::new();
        for (index, message) in self.messages.iter().enumerate() {
            if let Some(rate) = self.plan.rate {
                let due = started_at + Duration::from_secs_f64(index as f64 / rate);
                tokio::time::sleep_until(due.into()).await;
            }
            self.started.fetch_add(1, Ordering::SeqCst);
            tasks.spawn(deliver_message(Arc::clone(&shared), index, message.clone()));
        }
        let all = async {
            let mut deliveries = Vec::new();
            while let Some(done) = tasks.join_next().await {
                deliveries.extend(done.expect("a delivery task"));
            }
            deliveries
        };
        let left = self.plan.deadline.saturating_sub(started_at.elapsed());
        self.deliveries = tokio::time::timeout(left, all).await.unwrap_or_else(|_| {
            panic!("the run outlived its deadline of {:?}", self.plan.deadline)
        });
        self.wall = started_at.elapsed();
    }

    /// Delivers messages `indices` once more each (as the platform does when an answer was
    /// lost), after the run; kept with the run's deliveries as [`Attempt::Later`].
    pub async fn deliver_again(&mut self, base: &str, indices: &[usize]) {
        let shared = Shared {
            run_start: *self.run_start.get_or_insert_with(Instant::now),
            client: reqwest::Client::builder()
                .timeout(self.plan.platform_timeout)
                .build()
                .expect("an HTTP client"),
            base: base.to_owned(),
            plan: self.plan.clone(),
            permits: Semaphore::new(self.plan.concurrency),
            sims: self.sims.clone(),
        };
        let again = indices
            .iter()
            .map(|&i| deliver_once(&shared, i, &self.messages[i], Attempt::Later));
        let deliveries = tokio::time::timeout(
            self.plan.platform_timeout * 2,
            futures::future::join_all(again),
        )
        .await
        .expect("the deliveries again end within their timeout");
        self.deliveries.extend(deliveries);
    }

    /// The deliveries of message `index`.
    pub fn of(&self, index: usize) -> impl Iterator<Item = &Delivery> {
        self.deliveries.iter().filter(move |d| d.message == index)
    }
}

struct Shared {
    run_start: Instant,
    client: reqwest::Client,
    base: String,
    plan: Plan,
    permits: Semaphore,
    sims: HashMap<&'static str, PlatformSim>,
}

/// The first delivery with its retries, and the message's duplicates.
async fn deliver_message(shared: Arc<Shared>, index: usize, message: Message) -> Vec<Delivery> {
    let first = deliver_with_retries(&shared, index, &message);
    let mut deliveries = if message.dup_at_once {
        let (mut first, duplicate) = tokio::join!(
            first,
            deliver_once(&shared, index, &message, Attempt::AtOnce)
        );
        first.push(duplicate);
        first
    } else {
        first.await
    };
    if message.dup_later {
        deliveries.push(deliver_once(&shared, index, &message, Attempt::Later).await);
    }
    deliveries
}

/// Tries until the platform accepts an answer, at most `tries` times.
async fn deliver_with_retries(shared: &Shared, index: usize, message: &Message) -> Vec<Delivery> {
    let mut deliveries = Vec::new();
    for attempt in 0..shared.plan.tries {
        if attempt > 0 {
            tokio::time::sleep(shared.plan.retry_pause).await;
        }
        let delivery = deliver_once(shared, index, message, Attempt::Try(attempt)).await;
        let accepted = matches!(delivery.outcome, Outcome::Answered(_));
        deliveries.push(delivery);
        if accepted {
            break;
        }
    }
    deliveries
}

/// One request: signed and encrypted now with a fresh nonce, its answer checked.
async fn deliver_once(
    shared: &Shared,
    index: usize,
    message: &Message,
    attempt: Attempt,
) -> Delivery {
    let sim = &shared.sims[message.app];
    let nonce = format!("n{index}x{attempt:?}x{}", rand::random::<u32>());
    let request = sim
        .post(&message.xml, unix_now(), &nonce)
        .expect("the platform signs and encrypts the message");
    let url = format!("{}{}", shared.base, request.path_and_query());
    let _permit = shared
        .permits
        .acquire()
        .await
        .expect("the semaphore is open");
    let started = Instant::now();
    let sent = shared
        .client
        .post(url)
        .body(request.body.clone())
        .send()
        .await;
    let outcome = match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            match response.text().await {
                Ok(body) => match sim.check(&request, status, &body) {
                    Ok(Answer::Empty) => Outcome::Answered(None),
                    Ok(Answer::Reply(xml)) => Outcome::Answered(Some(xml)),
                    Ok(Answer::Verified(_)) => Outcome::Invalid("an echo to a POST".into()),
                    Err(_) if status != 200 => Outcome::Status(status),
                    Err(e) => Outcome::Invalid(e.to_string()),
                },
                Err(e) if e.is_timeout() => Outcome::TimedOut,
                Err(_) => Outcome::Unreachable,
            }
        }
        Err(e) if e.is_timeout() => Outcome::TimedOut,
        Err(_) => Outcome::Unreachable,
    };
    Delivery {
        message: index,
        attempt,
        sent_at: started.duration_since(shared.run_start),
        latency: started.elapsed(),
        outcome,
    }
}

/// The text content of a reply's XML (`<Content><![CDATA[…]]></Content>`), if any.
pub fn content_of(xml: &str) -> Option<&str> {
    let start = xml.find("<Content><![CDATA[")? + "<Content><![CDATA[".len();
    let end = xml[start..].find("]]></Content>")? + start;
    Some(&xml[start..end])
}
