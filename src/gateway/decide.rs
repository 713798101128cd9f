//! Deciding a callback's answer: parse it, leave report-only events and platform notices
//! unanswered, claim it in the store (a retry gets the first delivery's answer), ask the
//! bot under the late-reply strategy, render its reply by the platform's rules and record
//! it.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::dedup::{Begin, Write};
use super::{App, Gateway, Late, Rejection, late};
use crate::bot::{Bot, Inbound, Notice, Triage};
use crate::clock::{EpochMillis, now_ms, unix_now};
use crate::message::{Callback, Message};
use crate::metrics::{self, Kind, Metric, Outcome};
use crate::reply::Reply;
use crate::store::{MAX_JOB_MESSAGE_BYTES, NewJob};

impl<B: Bot> Gateway<B> {
    /// The reply XML to a callback (`xml`, its plaintext), or `None` for the empty answer.
    pub(super) async fn decide(
        &self,
        app: &App,
        authorizer_app_id: Option<&str>,
        xml: &str,
        deadline: Instant,
    ) -> Result<Option<String>, Rejection> {
        let message = match Callback::parse(xml)? {
            Callback::Info(info) => {
                tracing::info!(app = %app.name, info_type = %info.info_type(), "platform notice received");
                self.component_notice(app, &info, deadline).await;
                let notice = Notice {
                    app: &app.name,
                    platform: app.platform,
                    info: &info,
                };
                if tokio::time::timeout_at(deadline, self.bot.notice(&notice))
                    .await
                    .is_err()
                {
                    tracing::warn!(app = %app.name, info_type = %info.info_type(), "the bot took the notice past the time budget; answering success");
                }
                metrics::callback(
                    Some(&app.name),
                    app.platform.as_str(),
                    Kind::Notice,
                    Outcome::Empty,
                );
                return Ok(None);
            }
            Callback::Message(message) => message,
        };
        // The release test's accounts first: it probes with report-only events too.
        if let Some(authorizer) = authorizer_app_id
            && let Some(answer) = self
                .release_test(app, authorizer, &message, xml, deadline)
                .await
        {
            metrics::callback(
                Some(&app.name),
                app.platform.as_str(),
                kind_of(&message),
                outcome_of(&answer),
            );
            return Ok(answer);
        }
        if message.event().is_some_and(|e| e.is_report_only()) {
            // LOCATION can arrive every few seconds per user: no bot, no info-level line.
            tracing::debug!(app = %app.name, event = %message.msg_type(), "report-only event");
            metrics::callback(
                Some(&app.name),
                app.platform.as_str(),
                kind_of(&message),
                Outcome::ReportOnly,
            );
            return Ok(None);
        }
        let key = crate::store::callback_key(&app.name, authorizer_app_id.is_some(), &message);
        let inbound = Inbound {
            app: &app.name,
            platform: app.platform,
            authorizer_app_id,
            message: &message,
            id: &key,
        };
        self.answer(app, &inbound, xml, deadline).await
    }

    async fn answer(
        &self,
        app: &App,
        inbound: &Inbound<'_>,
        xml: &str,
        deadline: Instant,
    ) -> Result<Option<String>, Rejection> {
        let message = inbound.message;
        let key = inbound.id.to_owned();
        let started = Instant::now();
        // Known at once and without side effects (a local rule): decided before the claim,
        // which then carries it, one store write. A delivery that loses the race answers
        // the reply recorded first instead.
        if let Triage::Known(reply) = self.bot.triage(inbound) {
            let xml = self.render(app, message, reply.as_ref());
            let write = Write::Decided(xml.as_deref());
            return match self.dedup.begin(&app.name, key, deadline, write).await {
                Begin::Replay { reply } => Ok(replayed(app, message, reply)),
                Begin::Undecided => Err(Rejection::Undecided),
                Begin::Decide(_) => {
                    answered(app, message, xml.as_ref().and(reply.as_ref()), started);
                    Ok(xml)
                }
            };
        }
        // The job carries the message on its record; one too large for a store item is
        // asked in the callback instead (the upstream then has the budget).
        let job = (matches!(self.late, Late::AsJobs)
            && app.can_send_actively()
            && xml.len() <= MAX_JOB_MESSAGE_BYTES)
            .then(|| NewJob {
                app: &app.name,
                authorizer_app_id: inbound.authorizer_app_id,
                message: xml,
                answer_by_ms: epoch_ms_at(deadline),
            });
        let write = job.map_or(Write::Claim, Write::Job);
        let ticket = match self.dedup.begin(&app.name, key, deadline, write).await {
            Begin::Decide(ticket) => ticket,
            Begin::Replay { reply } => {
                return Ok(replayed(app, message, reply));
            }
            Begin::Undecided => return Err(Rejection::Undecided),
        };
        if job.is_some() && ticket.is_claimed() {
            let reply = self.dedup.await_worker(&app.name, ticket, deadline).await;
            tracing::info!(
                app = %app.name,
                msg_type = %message.msg_type(),
                reply = if reply.is_some() { "worker" } else { "none" },
                "callback answered"
            );
            metrics::callback(
                Some(&app.name),
                app.platform.as_str(),
                kind_of(message),
                outcome_of(&reply),
            );
            return Ok(reply);
        }
        let asked = Instant::now();
        let reply = self.ask_bot(app, inbound, ticket.key(), deadline).await;
        metrics::latency(Metric::BotLatency, &app.name, asked.elapsed());
        let xml = self.render(app, message, reply.as_ref());
        answered(app, message, xml.as_ref().and(reply.as_ref()), started);
        self.dedup
            .finish(&app.name, ticket, xml.as_deref(), deadline)
            .await;
        Ok(xml)
    }

    /// The plaintext XML of the bot's reply; `None` (the empty answer) when there is none or
    /// it breaks the platform's rules.
    fn render(&self, app: &App, message: &Message, reply: Option<&Reply>) -> Option<String> {
        reply.and_then(|reply| {
            reply
                .render(message, app.platform, unix_now())
                .map_err(|e| {
                    tracing::error!(app = %app.name, code = e.code() as i32, cause = %e, "the bot's reply breaks the platform's rules; answering empty");
                })
                .ok()
        })
    }

    /// Asks the bot within the budget; a late bot is abandoned, or goes on in the
    /// background when that is the strategy and the app can send its reply.
    async fn ask_bot(
        &self,
        app: &App,
        inbound: &Inbound<'_>,
        key: &str,
        deadline: Instant,
    ) -> Option<Reply> {
        if let Late::InBackground(in_flight) = &self.late
            && app.can_send_actively()
            && let Ok(tokens) = self.shared_tokens()
        {
            return self
                .ask_in_background(app, inbound, key, deadline, in_flight, Arc::clone(tokens))
                .await;
        }
        match tokio::time::timeout_at(deadline, self.bot.reply(inbound)).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                e.warn(&app.name, false);
                metrics::count_with(Metric::BotFailures, Some(&app.name), "error");
                None
            }
            Err(_) => {
                tracing::warn!(
                    app = %app.name,
                    budget_ms = self.settings.budget_ms,
                    "the bot missed the time budget; answering empty"
                );
                metrics::count_with(Metric::BotFailures, Some(&app.name), "timeout");
                None
            }
        }
    }

    /// The bot runs as its own task: answered within the budget, its reply is passive;
    /// later, it goes on and its reply is sent actively.
    async fn ask_in_background(
        &self,
        app: &App,
        inbound: &Inbound<'_>,
        key: &str,
        deadline: Instant,
        in_flight: &late::InFlight,
        tokens: Arc<crate::wechat::TokenProvider>,
    ) -> Option<Reply> {
        let limit = Duration::from_millis(self.settings.deferred_limit_ms);
        let owned = late::OwnedInbound::from(inbound);
        let bot = Arc::clone(&self.bot);
        let mut task = tokio::spawn(async move {
            let inbound = owned.inbound();
            tokio::time::timeout(limit, bot.reply(&inbound))
                .await
                .unwrap_or_else(|_| Err(late::missed_limit(limit)))
        });
        match tokio::time::timeout_at(deadline, &mut task).await {
            Ok(Ok(Ok(reply))) => reply,
            Ok(Ok(Err(e))) => {
                e.warn(&app.name, false);
                metrics::count_with(Metric::BotFailures, Some(&app.name), "error");
                None
            }
            Ok(Err(e)) => {
                tracing::error!(app = %app.name, cause = %e, "the bot failed; answering empty");
                metrics::count_with(Metric::BotFailures, Some(&app.name), "panic");
                None
            }
            Err(_) => {
                let Some(slot) = in_flight.start(&app.name, key) else {
                    task.abort();
                    tracing::warn!(
                        app = %app.name,
                        in_flight = late::MAX_IN_BACKGROUND,
                        "the bot missed the time budget and too many late replies are running; answering empty, this reply is dropped"
                    );
                    return None;
                };
                tracing::info!(
                    app = %app.name,
                    budget_ms = self.settings.budget_ms,
                    "the bot missed the time budget; answering empty, its reply will follow as an active message"
                );
                // Only now, for the late ones, is the delivery put together.
                let delivery = late::Delivery::to_sender(
                    app,
                    inbound.message,
                    inbound.authorizer_app_id,
                    tokens,
                )?;
                tokio::spawn(late::deliver_late(task, delivery, limit, slot));
                None
            }
        }
    }
}

/// Logs a delivery answered with another delivery's reply.
fn replayed(app: &App, message: &Message, reply: Option<String>) -> Option<String> {
    tracing::info!(
        app = %app.name,
        msg_type = %message.msg_type(),
        reply = if reply.is_some() { "recorded" } else { "none" },
        "duplicate callback answered from the first delivery"
    );
    metrics::count(Metric::DedupReplays, &app.name);
    metrics::callback(
        Some(&app.name),
        app.platform.as_str(),
        kind_of(message),
        Outcome::Replayed,
    );
    reply
}

/// Logs a delivery answered with its own reply (`reply`: the one rendered, if any).
fn answered(app: &App, message: &Message, reply: Option<&Reply>, started: Instant) {
    tracing::info!(
        app = %app.name,
        msg_type = %message.msg_type(),
        reply = reply.map_or("none", |r| r.msg_type()),
        bot_us = started.elapsed().as_micros() as u64,
        "callback answered"
    );
    metrics::callback(
        Some(&app.name),
        app.platform.as_str(),
        kind_of(message),
        outcome_of(&reply),
    );
}

/// The `kind` label of a message.
fn kind_of(message: &Message) -> Kind {
    if message.event().is_some() {
        Kind::Event
    } else {
        Kind::Message
    }
}

/// The `outcome` label of an answer: a reply, or the empty one.
fn outcome_of<T>(reply: &Option<T>) -> Outcome {
    if reply.is_some() {
        Outcome::Answered
    } else {
        Outcome::Empty
    }
}

/// The epoch milliseconds of an instant (now plus what remains until it).
fn epoch_ms_at(instant: Instant) -> EpochMillis {
    let remaining = instant.saturating_duration_since(Instant::now());
    now_ms().saturating_add(crate::clock::millis(remaining))
}
