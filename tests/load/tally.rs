//! What a run showed: the figures (callbacks per second, latency percentiles) and, per
//! message, whether it was answered, how often the bot ran, whether every copy got the same
//! reply, and whether its late reply went out once, together with the gateway's own counts
//! of the cases docs/security.md allows to run a message twice.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

use super::bot::CountingBot;
use super::driver::{Kind, Outcome, Run, content_of};
use super::gateway::GatewayProcess;
use crate::support::fake_platform::FakePlatform;

/// Log lines the gateway writes for each case that may decide a message again.
pub const FAIL_OPEN: &str = "dedup unavailable; deciding this callback without it";
pub const RECORD_FAILED: &str = "cannot record the reply; a retry of this callback";
pub const TAKEN_OVER: &str = "dedup claim was taken over before the reply was recorded";
/// … and for the answers that are empty by design.
/// The refusal (503) of a copy whose first delivery recorded nothing within its budget.
pub const WAITED_EMPTY: &str = "another delivery of this message is still being decided";
pub const BOT_FAILED: &str = "the bot gave no reply; answering empty";
/// … and for late replies.
pub const LATE_SENT: &str = "late reply sent as an active message";
pub const LATE_NOT_SENT: &str = "the late reply could not be sent";
pub const LATE_BOT_FAILED: &str = "the late bot gave no reply; nothing sent";

/// The outcome of one run.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub scenario: String,
    pub messages: usize,
    /// Requests made (every try and duplicate).
    pub callbacks: usize,
    pub wall: Duration,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// Requests answered 5xx, another non-200, refused by the platform's checks, not
    /// answered in time, not connected.
    pub server_errors: usize,
    /// 503 answers to copies that found the first delivery undecided at their budget (the
    /// platform tries again; `unanswered` says whether a later try got the reply).
    pub undecided: usize,
    pub other_status: usize,
    pub invalid: usize,
    pub timed_out: usize,
    pub unreachable: usize,
    /// Messages no request of which got an answer the platform accepts.
    pub unanswered: usize,
    /// Messages for the bot that it never ran for.
    pub never_run: usize,
    /// Bot runs beyond the first, over all messages; messages run more than once.
    pub extra_runs: u64,
    pub run_twice: usize,
    /// Rule-answered messages the bot ran for.
    pub rule_runs: u64,
    /// Copies whose reply differs from an earlier copy's (beyond its `CreateTime`); replies
    /// with another content than the message's.
    pub mismatched: usize,
    /// Copies whose reply equals an earlier copy's but for its `CreateTime`: the message
    /// was decided again (the same bot answer, built anew), which only a store failure
    /// allows.
    pub redecided: usize,
    pub wrong: usize,
    /// Answers of a passive message that were empty (allowed while a copy waited in vain
    /// or the bot failed), and the passive messages whose every answer was empty.
    pub empty_answers: usize,
    pub empty_messages: usize,
    /// Late replies: expected, sent once, sent more than once, reported not sent.
    pub late_expected: usize,
    pub late_sent: usize,
    pub late_twice: usize,
    pub late_failed: usize,
    /// Late bots that failed (a hanging upstream past `forward_timeout_ms`): nothing to send.
    pub late_bot_failed: usize,
    /// The gateway's log: decisions without the store, records that failed, claims taken
    /// over, copies answered empty while waiting, bot failures.
    pub fail_open: usize,
    pub record_failed: usize,
    pub taken_over: usize,
    pub waited_empty: usize,
    pub bot_failed: usize,
    /// Requests the bot refused for their signature.
    pub bad_signatures: u64,
    /// Messages started while the gateway was down or had just been killed mid-decision
    /// (set by the kill scenario): each may be decided once more after its lease.
    pub killed_in_flight: usize,
    pub notes: String,
    /// What each request of an unanswered message got, for the failure message.
    pub unanswered_detail: Vec<String>,
}

/// The reply XML without its `CreateTime` element.
fn without_create_time(xml: &str) -> String {
    match (xml.find("<CreateTime>"), xml.find("</CreateTime>")) {
        (Some(start), Some(end)) if start < end => {
            format!("{}{}", &xml[..start], &xml[end + "</CreateTime>".len()..])
        }
        _ => xml.to_owned(),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

impl Tally {
    /// Tallies `run` against what the bot, the fake platform and the gateway's log saw.
    pub fn of(
        scenario: &str,
        run: &Run,
        bot: &CountingBot,
        platform: &FakePlatform,
        gateway: &GatewayProcess,
    ) -> Tally {
        let mut t = Tally {
            scenario: scenario.to_owned(),
            messages: run.messages.len(),
            callbacks: run.deliveries.len(),
            wall: run.wall,
            bad_signatures: bot.bad_signatures(),
            ..Tally::default()
        };
        let mut answered: Vec<Duration> = run
            .deliveries
            .iter()
            .filter(|d| matches!(d.outcome, Outcome::Answered(_) | Outcome::Status(_)))
            .map(|d| d.latency)
            .collect();
        answered.sort_unstable();
        t.p50 = percentile(&answered, 50.0);
        t.p99 = percentile(&answered, 99.0);
        t.max = answered.last().copied().unwrap_or_default();
        for d in &run.deliveries {
            match &d.outcome {
                Outcome::Status(503) => t.undecided += 1,
                Outcome::Status(s) if *s >= 500 => t.server_errors += 1,
                Outcome::Status(_) => t.other_status += 1,
                Outcome::Invalid(_) => t.invalid += 1,
                Outcome::TimedOut => t.timed_out += 1,
                Outcome::Unreachable => t.unreachable += 1,
                Outcome::Answered(_) => {}
            }
        }

        let sent = platform.sent();
        let mut sent_by_content: HashMap<&str, usize> = HashMap::new();
        for message in &sent {
            *sent_by_content.entry(message.content.as_str()).or_default() += 1;
        }
        for (index, message) in run.messages.iter().enumerate() {
            let answers: Vec<&Option<String>> = run
                .of(index)
                .filter_map(|d| match &d.outcome {
                    Outcome::Answered(answer) => Some(answer),
                    _ => None,
                })
                .collect();
            if answers.is_empty() {
                t.unanswered += 1;
                let tries: Vec<String> = run
                    .of(index)
                    .map(|d| {
                        format!(
                            "{:?} at {:?}: {:?} after {:?}",
                            d.attempt, d.sent_at, d.outcome, d.latency
                        )
                    })
                    .collect();
                t.unanswered_detail.push(format!(
                    "{} {}: {}",
                    message.app,
                    message.msg_id,
                    tries.join("; ")
                ));
            }
            let runs = u64::from(bot.runs(message.app, message.msg_id));
            if message.kind == Kind::Rule {
                t.rule_runs += runs;
            } else if runs == 0 {
                t.never_run += 1;
            } else if runs > 1 {
                t.extra_runs += runs - 1;
                t.run_twice += 1;
            }
            let expected = message.expected();
            let mut first: Option<&str> = None;
            let mut empties = 0;
            for answer in &answers {
                match answer {
                    None => empties += 1,
                    Some(xml) => {
                        if content_of(xml) != Some(expected.as_str()) {
                            t.wrong += 1;
                        }
                        match first {
                            None => first = Some(xml),
                            Some(earlier) if earlier == xml.as_str() => {}
                            Some(earlier)
                                if without_create_time(earlier) == without_create_time(xml) =>
                            {
                                t.redecided += 1;
                            }
                            Some(_) => t.mismatched += 1,
                        }
                    }
                }
            }
            if message.kind == Kind::Slow {
                // Answered empty by design; its reply goes out actively.
                t.late_expected += 1;
                match sent_by_content.get(expected.as_str()).copied().unwrap_or(0) {
                    0 => {}
                    1 => t.late_sent += 1,
                    _ => t.late_twice += 1,
                }
            } else {
                t.empty_answers += empties;
                if !answers.is_empty() && empties == answers.len() {
                    t.empty_messages += 1;
                }
            }
        }
        t.late_failed = gateway.count(LATE_NOT_SENT);
        t.late_bot_failed = gateway.count(LATE_BOT_FAILED);
        t.fail_open = gateway.count(FAIL_OPEN);
        t.record_failed = gateway.count(RECORD_FAILED);
        t.taken_over = gateway.count(TAKEN_OVER);
        t.waited_empty = gateway.count(WAITED_EMPTY);
        t.bot_failed = gateway.count(BOT_FAILED);
        t
    }

    /// Callbacks answered per second of the run.
    pub fn throughput(&self) -> f64 {
        self.callbacks as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// How many bot runs beyond the first docs/security.md allows: one per callback decided
    /// without the store, per reply that could not be recorded (a retry decides again once
    /// the claim's lease ran out), and per claim whose holder was killed.
    pub fn allowed_extra_runs(&self) -> u64 {
        (self.fail_open + self.record_failed + self.killed_in_flight) as u64
    }

    /// One line of the figures table (the `load-row:` lines scripts/load.sh collects under
    /// its header).
    pub fn row(&self) -> String {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let mut row = String::new();
        let _ = write!(
            row,
            "{} | {} | {} | {:.1} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {} | {} ({}) | {} | \
             {}/{}/{} | {} | {}",
            self.scenario,
            self.messages,
            self.callbacks,
            self.wall.as_secs_f64(),
            self.throughput(),
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.server_errors,
            self.unanswered,
            self.extra_runs,
            self.allowed_extra_runs(),
            self.empty_answers,
            self.late_sent,
            self.late_failed,
            self.late_twice,
            self.fail_open,
            self.notes,
        );
        row
    }

    /// Prints the row for scripts/load.sh, and the details.
    pub fn print(&self) {
        println!("load-row: {}", self.row());
        println!("  {self:?}");
    }

    /// What holds in every scenario, faults or not: no 5xx and no answer the platform would
    /// refuse, nothing unanswered, every reply the message's own and the same for every
    /// copy, rules never reach the bot, no late reply twice, every late reply sent or
    /// reported, and no more extra runs than the documented cases account for.
    pub fn assert_invariants(&self) {
        let what = format!("{}: {self:#?}", self.scenario);
        assert_eq!(self.server_errors, 0, "5xx answers; {what}");
        assert_eq!(self.invalid, 0, "answers the platform refuses; {what}");
        assert_eq!(self.unanswered, 0, "messages never answered; {what}");
        assert_eq!(self.wrong, 0, "replies not the message's own; {what}");
        assert_eq!(self.mismatched, 0, "copies answered differently; {what}");
        assert_eq!(
            self.rule_runs, 0,
            "rule-answered messages reached the bot; {what}"
        );
        assert_eq!(
            self.bad_signatures, 0,
            "unsigned requests to the bot; {what}"
        );
        assert_eq!(self.late_twice, 0, "late replies sent twice; {what}");
        assert_eq!(
            self.late_sent + self.late_failed,
            self.late_expected,
            "late replies neither sent nor reported; {what}"
        );
        assert!(
            self.redecided == 0 || self.allowed_extra_runs() > 0,
            "a message decided twice with the store up; {what}"
        );
        assert!(
            self.extra_runs <= self.allowed_extra_runs(),
            "more bot runs than docs/security.md allows; {what}"
        );
    }
}
