//! One contract for both stores: every scenario runs against the embedded `MemoryStore` and
//! against `DynamoStore` on two real DynamoDB-compatible servers on 127.0.0.1: dynalite, which
//! never returns the item with a failed condition (so a losing claim reads it back with
//! GetItem), and moto, which does (so it is used as returned).
//!
//! The clock is an argument of every store call, so lease and retention expiry are tested by
//! moving `now_ms`, not by sleeping.
// Some tests here need a local AWS-compatible server or Python: they are built only with
// `--features external-tests` (scripts/test.sh); the rest run with plain `cargo test`.
#![cfg_attr(not(feature = "external-tests"), allow(dead_code, unused_imports))]

mod support;

use support::dynamo::{DynamoServer, client, create_table, unique_table_name};
use support::moto::MotoServer;
use wxgate::store::{
    AuthorizationRecord, AuthorizationState, CachedToken, Claim, DedupRecord, DedupTimes,
    DynamoStore, Grant, JobEnd, JobRecord, JobState, NewJob, Store, StreamWrite, Ticket,
    TokenRecord, dedup_key, signature_key, token_key,
};

const T0: u64 = 1_800_000_000_000;
const LEASE_MS: u64 = 6_000;
const RETENTION_SECS: u64 = 3_600;

fn at(now_ms: u64) -> DedupTimes {
    DedupTimes {
        now_ms,
        lease_ms: LEASE_MS,
        retention_secs: RETENTION_SECS,
    }
}

/// A DynamoDB store on a fresh table; the server lives as long as the returned guard.
async fn dynamo() -> (DynamoServer, DynamoStore) {
    let server = DynamoServer::start();
    let store = store_on_new_table(&server.endpoint()).await;
    (server, store)
}

/// A DynamoDB store on a table of its own at `endpoint`.
async fn store_on_new_table(endpoint: &str) -> DynamoStore {
    let client = client(endpoint).await;
    let table = unique_table_name("contract");
    create_table(&client, &table).await;
    DynamoStore::new(client, table)
}

/// A DynamoDB store on a fresh table of the moto server this test binary shares (one start
/// of 0.5-0.9 s instead of one per test; each test has its own table).
async fn moto() -> DynamoStore {
    store_on_new_table(&MotoServer::shared().endpoint()).await
}

/// Declares each scenario three times: `memory::name`, `dynamodb::name` (dynalite) and
/// `moto::name`.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name(&wxgate::store::MemoryStore::new()).await;
                }
            )*
        }
        #[cfg(feature = "external-tests")]
        mod dynamodb {
            $(
                #[tokio::test]
                async fn $name() {
                    let (_server, store) = super::dynamo().await;
                    super::$name(&store).await;
                }
            )*
        }
        #[cfg(feature = "external-tests")]
        mod moto {
            $(
                #[tokio::test]
                async fn $name() {
                    let store = super::moto().await;
                    super::$name(&store).await;
                }
            )*
        }
    };
}

contract!(
    first_claim_wins_and_later_ones_see_it_in_progress,
    completion_is_replayed_to_later_claims,
    only_the_owner_completes,
    a_dead_holders_claim_is_taken_over_after_its_lease,
    expired_records_are_ignored_on_read_and_reclaimed,
    keys_are_independent,
    concurrent_claims_have_one_winner,
    replies_keep_every_character,
    a_decided_claim_records_its_reply_in_one_write,
    a_decided_claim_defers_to_what_holds_the_key,
    concurrent_decided_claims_record_one_reply,
    token_lease_is_exclusive_until_it_runs_out,
    token_is_stored_only_by_the_lease_holder_and_expires,
    a_token_is_dropped_only_if_it_is_still_the_failed_one,
    a_refresh_lease_is_given_back_only_by_its_holder,
    a_job_is_taken_once_and_answered_passively_while_the_callback_waits,
    a_callback_that_stopped_waiting_leaves_the_reply_to_be_sent_once,
    a_reply_after_the_answer_by_time_is_not_stored_for_the_callback,
    a_crashed_workers_job_is_taken_over_and_a_failure_is_kept,
    a_job_record_is_never_taken_over_by_a_claim,
    a_stream_is_written_by_its_jobs_holder_in_order_and_after_a_takeover,
    a_write_repeated_by_its_author_is_recognised,
    a_signature_is_bound_to_its_first_body_until_it_expires,
    tickets_newest_wins_per_component,
    a_grant_reads_back_and_older_events_are_not_applied,
    a_revoke_leaves_a_tombstone_that_only_a_newer_grant_lifts,
    account_info_goes_on_existing_records_and_grants_keep_it,
    a_refresh_token_is_replaced_only_from_the_current_one,
    a_broken_authorization_is_marked_only_from_its_token_and_recovers,
    authorizations_list_one_component_sorted_with_tombstones,
    concurrent_refresh_token_replacements_have_one_winner,
    concurrent_grants_keep_the_latest_event,
);

async fn first_claim_wins_and_later_ones_see_it_in_progress(store: &impl Store) {
    let key = dedup_key("demo", "msg|1");
    assert_eq!(store.claim(&key, "a", at(T0)).await.unwrap(), Claim::Won);
    assert_eq!(
        store.claim(&key, "b", at(T0 + 10)).await.unwrap(),
        Claim::InProgress {
            lease_until_ms: T0 + LEASE_MS
        }
    );
    // The lease's last millisecond still belongs to the holder.
    assert_eq!(
        store.claim(&key, "c", at(T0 + LEASE_MS)).await.unwrap(),
        Claim::InProgress {
            lease_until_ms: T0 + LEASE_MS
        }
    );
    assert_eq!(
        store.dedup_record(&key, T0 + 20).await.unwrap(),
        Some(DedupRecord::InProgress {
            lease_until_ms: T0 + LEASE_MS
        })
    );
}

async fn completion_is_replayed_to_later_claims(store: &impl Store) {
    let with_reply = dedup_key("demo", "msg|2");
    let empty = dedup_key("demo", "msg|3");
    for key in [&with_reply, &empty] {
        assert_eq!(store.claim(key, "a", at(T0)).await.unwrap(), Claim::Won);
    }
    assert!(
        store
            .complete(&with_reply, "a", Some("<xml>r</xml>"), at(T0 + 5))
            .await
            .unwrap()
    );
    assert!(store.complete(&empty, "a", None, at(T0 + 5)).await.unwrap());
    let done = |reply: Option<&str>| Claim::Done {
        reply: reply.map(str::to_owned),
    };
    // Long after the lease, but within retention: still the recorded answer.
    let later = T0 + LEASE_MS * 10;
    assert_eq!(
        store.claim(&with_reply, "b", at(later)).await.unwrap(),
        done(Some("<xml>r</xml>"))
    );
    assert_eq!(
        store.claim(&empty, "b", at(later)).await.unwrap(),
        done(None)
    );
    assert_eq!(
        store.dedup_record(&with_reply, later).await.unwrap(),
        Some(DedupRecord::Done {
            reply: Some("<xml>r</xml>".into())
        })
    );
}

async fn only_the_owner_completes(store: &impl Store) {
    let key = dedup_key("demo", "msg|4");
    assert!(!store.complete(&key, "a", Some("x"), at(T0)).await.unwrap());
    assert_eq!(store.claim(&key, "a", at(T0)).await.unwrap(), Claim::Won);
    assert!(
        !store
            .complete(&key, "b", Some("x"), at(T0 + 1))
            .await
            .unwrap()
    );
    assert!(matches!(
        store.dedup_record(&key, T0 + 2).await.unwrap(),
        Some(DedupRecord::InProgress { .. })
    ));
}

async fn a_dead_holders_claim_is_taken_over_after_its_lease(store: &impl Store) {
    let key = dedup_key("demo", "msg|5");
    assert_eq!(store.claim(&key, "dead", at(T0)).await.unwrap(), Claim::Won);
    let after_lease = T0 + LEASE_MS + 1;
    assert_eq!(
        store.claim(&key, "heir", at(after_lease)).await.unwrap(),
        Claim::Won
    );
    // The dead holder, should it wake up, can no longer record its answer.
    assert!(
        !store
            .complete(&key, "dead", Some("late"), at(after_lease + 1))
            .await
            .unwrap()
    );
    assert!(
        store
            .complete(&key, "heir", Some("fresh"), at(after_lease + 2))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .claim(&key, "third", at(after_lease + 3))
            .await
            .unwrap(),
        Claim::Done {
            reply: Some("fresh".into())
        }
    );
    // A completed record is never taken over, however old its lease.
    assert!(matches!(
        store
            .claim(&key, "fourth", at(after_lease + LEASE_MS * 100))
            .await
            .unwrap(),
        Claim::Done { .. }
    ));
}

async fn expired_records_are_ignored_on_read_and_reclaimed(store: &impl Store) {
    let key = dedup_key("demo", "msg|6");
    assert_eq!(store.claim(&key, "a", at(T0)).await.unwrap(), Claim::Won);
    assert!(
        store
            .complete(&key, "a", Some("old"), at(T0))
            .await
            .unwrap()
    );
    let expired = T0 + (RETENTION_SECS + 2) * 1000;
    // The item may still be in the table (TTL deletion is lazy), but it reads as absent.
    assert_eq!(store.dedup_record(&key, expired).await.unwrap(), None);
    assert_eq!(
        store.claim(&key, "b", at(expired)).await.unwrap(),
        Claim::Won
    );
    assert!(
        store
            .complete(&key, "b", Some("new"), at(expired))
            .await
            .unwrap()
    );
    assert_eq!(
        store.claim(&key, "c", at(expired + 1)).await.unwrap(),
        Claim::Done {
            reply: Some("new".into())
        }
    );
}

async fn keys_are_independent(store: &impl Store) {
    let a = dedup_key("demo", "msg|7");
    let b = dedup_key("other", "msg|7");
    assert_eq!(store.claim(&a, "x", at(T0)).await.unwrap(), Claim::Won);
    assert_eq!(store.claim(&b, "y", at(T0)).await.unwrap(), Claim::Won);
    assert_eq!(
        store
            .dedup_record(&dedup_key("demo", "msg|8"), T0)
            .await
            .unwrap(),
        None
    );
    // A token item and a dedup item never collide.
    assert_eq!(
        store.token(&token_key("demo"), T0).await.unwrap(),
        TokenRecord::default()
    );
}

async fn concurrent_claims_have_one_winner(store: &impl Store) {
    let key = dedup_key("demo", "msg|9");
    let owners: Vec<String> = (0..32).map(|i| format!("owner-{i}")).collect();
    let claims =
        futures::future::join_all(owners.iter().map(|o| store.claim(&key, o, at(T0)))).await;
    let won = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::Won)))
        .count();
    let waiting = claims
        .iter()
        .filter(|c| matches!(c, Ok(Claim::InProgress { .. })))
        .count();
    assert_eq!((won, waiting), (1, 31), "{claims:?}");
}

/// A reply decided before the claim (a local rule) is claimed and recorded at once: later
/// claims, decided or not, replay it; its author's repeated write is still its own.
async fn a_decided_claim_records_its_reply_in_one_write(store: &impl Store) {
    let key = dedup_key("demo", "decided|1");
    let empty = dedup_key("demo", "decided|2");
    let reply = "<xml><Content><![CDATA[echo 你好]]></Content></xml>";
    assert_eq!(
        store
            .claim_decided(&key, "a", Some(reply), at(T0))
            .await
            .unwrap(),
        Claim::Won
    );
    assert_eq!(
        store
            .claim_decided(&empty, "a", None, at(T0))
            .await
            .unwrap(),
        Claim::Won
    );
    let done = |reply: Option<&str>| Claim::Done {
        reply: reply.map(str::to_owned),
    };
    // The same write again (a retry whose first attempt landed) is its author's claim.
    assert_eq!(
        store
            .claim_decided(&key, "a", Some(reply), at(T0 + 250))
            .await
            .unwrap(),
        Claim::Won
    );
    assert_eq!(
        store
            .claim_decided(&key, "b", Some("<xml>other</xml>"), at(T0 + 260))
            .await
            .unwrap(),
        done(Some(reply))
    );
    assert_eq!(
        store
            .claim(&key, "c", at(T0 + LEASE_MS * 10))
            .await
            .unwrap(),
        done(Some(reply))
    );
    assert_eq!(
        store.claim(&empty, "c", at(T0 + 1)).await.unwrap(),
        done(None)
    );
    assert_eq!(
        store.dedup_record(&key, T0 + 1).await.unwrap(),
        Some(DedupRecord::Done {
            reply: Some(reply.into())
        })
    );
    // Nothing is left to complete: a completion by anyone else changes nothing.
    assert!(!store.complete(&key, "b", None, at(T0 + 2)).await.unwrap());
    // Once expired, the key is claimed afresh.
    let after = T0 + (RETENTION_SECS + 1) * 1000;
    assert_eq!(
        store
            .claim_decided(&key, "d", Some("<xml>new</xml>"), at(after))
            .await
            .unwrap(),
        Claim::Won
    );
}

/// A decided claim on a key another delivery holds in progress waits like a claim: it does
/// not overwrite the holder's claim (nor its job); after the lease it takes the key over.
async fn a_decided_claim_defers_to_what_holds_the_key(store: &impl Store) {
    let key = dedup_key("demo", "decided|3");
    assert_eq!(
        store.claim(&key, "holder", at(T0)).await.unwrap(),
        Claim::Won
    );
    assert_eq!(
        store
            .claim_decided(&key, "b", Some("<xml>r</xml>"), at(T0 + 10))
            .await
            .unwrap(),
        Claim::InProgress {
            lease_until_ms: T0 + LEASE_MS
        }
    );
    assert!(
        store
            .complete(&key, "holder", Some("<xml>h</xml>"), at(T0 + 20))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .claim_decided(&key, "b", Some("<xml>r</xml>"), at(T0 + 30))
            .await
            .unwrap(),
        Claim::Done {
            reply: Some("<xml>h</xml>".into())
        }
    );
    let dead = dedup_key("demo", "decided|4");
    assert_eq!(
        store.claim(&dead, "dead", at(T0)).await.unwrap(),
        Claim::Won
    );
    assert_eq!(
        store
            .claim_decided(&dead, "heir", Some("<xml>r</xml>"), at(T0 + LEASE_MS + 1))
            .await
            .unwrap(),
        Claim::Won
    );
    assert!(
        !store
            .complete(&dead, "dead", None, at(T0 + LEASE_MS + 2))
            .await
            .unwrap()
    );
    let jobbed = dedup_key("demo", "decided|5");
    claimed_job(store, &jobbed).await;
    assert!(matches!(
        store
            .claim_decided(&jobbed, "b", Some("<xml>r</xml>"), at(T0 + 10))
            .await
            .unwrap(),
        Claim::InProgress { .. }
    ));
}

async fn concurrent_decided_claims_record_one_reply(store: &impl Store) {
    let key = dedup_key("demo", "decided|6");
    let owners: Vec<String> = (0..32).map(|i| format!("owner-{i}")).collect();
    let replies: Vec<String> = owners.iter().map(|o| format!("<xml>{o}</xml>")).collect();
    let claims = futures::future::join_all(
        owners
            .iter()
            .zip(&replies)
            .map(|(o, r)| store.claim_decided(&key, o, Some(r), at(T0))),
    )
    .await;
    let winners: Vec<usize> = (0..claims.len())
        .filter(|&i| matches!(claims[i], Ok(Claim::Won)))
        .collect();
    assert_eq!(winners.len(), 1, "{claims:?}");
    let recorded = &replies[winners[0]];
    for (i, claim) in claims.iter().enumerate() {
        if i != winners[0] {
            assert_eq!(
                claim.as_ref().unwrap(),
                &Claim::Done {
                    reply: Some(recorded.clone())
                }
            );
        }
    }
}

async fn replies_keep_every_character(store: &impl Store) {
    let key = dedup_key("demo", "msg|10");
    let reply = format!(
        "<xml><Content><![CDATA[你好 ]]]]><![CDATA[> & \"quotes\" 😀 {}]]></Content></xml>",
        "长".repeat(700)
    );
    assert_eq!(store.claim(&key, "a", at(T0)).await.unwrap(), Claim::Won);
    assert!(
        store
            .complete(&key, "a", Some(&reply), at(T0))
            .await
            .unwrap()
    );
    assert_eq!(
        store.claim(&key, "b", at(T0 + 1)).await.unwrap(),
        Claim::Done { reply: Some(reply) }
    );
}

fn token(value: &str, expires_at_ms: u64) -> CachedToken {
    CachedToken {
        value: value.into(),
        expires_at_ms,
        refresh_at_ms: expires_at_ms - 1000,
    }
}

async fn token_lease_is_exclusive_until_it_runs_out(store: &impl Store) {
    let key = token_key("wecom#corp#abcd1234");
    assert!(store.take_token_lease(&key, "a", T0, 1000).await.unwrap());
    assert!(
        !store
            .take_token_lease(&key, "b", T0 + 500, 1000)
            .await
            .unwrap()
    );
    assert_eq!(
        store.token(&key, T0 + 500).await.unwrap(),
        TokenRecord {
            token: None,
            lease_until_ms: T0 + 1000
        }
    );
    // The holder's lease ran out without a token stored: someone else may refresh.
    assert!(
        store
            .take_token_lease(&key, "b", T0 + 1001, 1000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_token(&key, "a", &token("from-a", T0 + 9_000))
            .await
            .unwrap()
    );
    assert!(
        store
            .put_token(&key, "b", &token("from-b", T0 + 9_000))
            .await
            .unwrap()
    );
    // Storing released the lease.
    assert!(
        store
            .take_token_lease(&key, "c", T0 + 1002, 1000)
            .await
            .unwrap()
    );
}

async fn token_is_stored_only_by_the_lease_holder_and_expires(store: &impl Store) {
    let key = token_key("mp#wxapp#abcd1234");
    assert!(
        !store
            .put_token(&key, "a", &token("t1", T0 + 7_200_000))
            .await
            .unwrap()
    );
    assert_eq!(store.token(&key, T0).await.unwrap().token, None);
    assert!(store.take_token_lease(&key, "a", T0, 10_000).await.unwrap());
    assert!(
        store
            .put_token(&key, "a", &token("t1", T0 + 7_200_000))
            .await
            .unwrap()
    );
    assert_eq!(
        store.token(&key, T0 + 1).await.unwrap(),
        TokenRecord {
            token: Some(token("t1", T0 + 7_200_000)),
            lease_until_ms: 0
        }
    );
    // At its expiry the token reads as gone.
    assert_eq!(store.token(&key, T0 + 7_200_000).await.unwrap().token, None);
    // A second put by the same owner needs a new lease.
    assert!(
        !store
            .put_token(&key, "a", &token("t2", T0 + 9_000_000))
            .await
            .unwrap()
    );
}

async fn a_token_is_dropped_only_if_it_is_still_the_failed_one(store: &impl Store) {
    let key = token_key("wecom#corp#ffff0000");
    assert!(!store.drop_token(&key, "t1").await.unwrap());
    assert!(store.take_token_lease(&key, "a", T0, 10_000).await.unwrap());
    assert!(
        store
            .put_token(&key, "a", &token("t1", T0 + 7_200_000))
            .await
            .unwrap()
    );
    // Another instance already replaced t1 with t2: a late "t1 failed" must not drop t2.
    assert!(
        store
            .take_token_lease(&key, "b", T0 + 1, 10_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .put_token(&key, "b", &token("t2", T0 + 7_200_000))
            .await
            .unwrap()
    );
    assert!(!store.drop_token(&key, "t1").await.unwrap());
    assert_eq!(
        store.token(&key, T0 + 2).await.unwrap().token,
        Some(token("t2", T0 + 7_200_000))
    );
    assert!(store.drop_token(&key, "t2").await.unwrap());
    assert_eq!(store.token(&key, T0 + 3).await.unwrap().token, None);
}

async fn a_refresh_lease_is_given_back_only_by_its_holder(store: &impl Store) {
    let key = token_key("mp#wxapp#release1");
    assert!(!store.release_token_lease(&key, "a").await.unwrap());
    assert!(store.take_token_lease(&key, "a", T0, 10_000).await.unwrap());
    assert!(!store.release_token_lease(&key, "b").await.unwrap());
    assert!(
        !store
            .take_token_lease(&key, "b", T0 + 1, 10_000)
            .await
            .unwrap()
    );
    // The holder's fetch failed: it gives the lease back, and the next instance need not
    // wait for the lease to run out.
    assert!(store.release_token_lease(&key, "a").await.unwrap());
    assert_eq!(
        store.token(&key, T0 + 2).await.unwrap(),
        TokenRecord::default()
    );
    assert!(
        store
            .take_token_lease(&key, "b", T0 + 2, 10_000)
            .await
            .unwrap()
    );
    // A stored token is untouched by a release.
    assert!(
        store
            .put_token(&key, "b", &token("t1", T0 + 7_200_000))
            .await
            .unwrap()
    );
    assert!(
        store
            .take_token_lease(&key, "c", T0 + 3, 10_000)
            .await
            .unwrap()
    );
    assert!(store.release_token_lease(&key, "c").await.unwrap());
    assert_eq!(
        store.token(&key, T0 + 4).await.unwrap(),
        TokenRecord {
            token: Some(token("t1", T0 + 7_200_000)),
            lease_until_ms: 0
        }
    );
}

// ------------------------------------------------------------------------------------------
// What the servers differ in
// ------------------------------------------------------------------------------------------

/// What a losing claim costs: moto returns the existing item with the failed condition
/// (`ReturnValuesOnConditionCheckFailure`), as DynamoDB does, so the store answers from it;
/// dynalite does not, so the store reads the item back.
#[cfg(feature = "external-tests")]
mod losing_claim_requests {
    use std::collections::BTreeMap;

    use super::support::dynamo::{DynamoServer, config, create_table, unique_table_name};
    use super::support::moto::MotoServer;
    use super::support::request_count::RequestCount;
    use super::{LEASE_MS, T0, at};
    use wxgate::store::{Claim, DedupStore, DynamoStore, dedup_key};

    /// The requests (by operation) made between two snapshots.
    fn delta(
        before: &BTreeMap<String, u64>,
        after: &BTreeMap<String, u64>,
    ) -> BTreeMap<String, u64> {
        after
            .iter()
            .map(|(op, n)| (op.clone(), n - before.get(op).copied().unwrap_or(0)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Loses one claim to a claim in progress and one to a completed one; returns the
    /// requests each losing claim made.
    async fn losing_claims(endpoint: &str) -> [BTreeMap<String, u64>; 2] {
        let count = RequestCount::default();
        let client = aws_sdk_dynamodb::Client::from_conf(
            config(endpoint).interceptor(count.interceptor()).build(),
        );
        let table = unique_table_name("losing");
        create_table(&client, &table).await;
        let store = DynamoStore::new(client, table);
        let key = dedup_key("demo", "msg|requests");
        let reply = "<xml><Content><![CDATA[已收到 ✓]]></Content></xml>";

        assert_eq!(store.claim(&key, "a", at(T0)).await.unwrap(), Claim::Won);
        let before = count.snapshot();
        assert_eq!(
            store.claim(&key, "b", at(T0 + 10)).await.unwrap(),
            Claim::InProgress {
                lease_until_ms: T0 + LEASE_MS
            }
        );
        let in_progress = delta(&before, &count.snapshot());

        assert!(
            store
                .complete(&key, "a", Some(reply), at(T0 + 20))
                .await
                .unwrap()
        );
        let before = count.snapshot();
        assert_eq!(
            store.claim(&key, "c", at(T0 + 30)).await.unwrap(),
            Claim::Done {
                reply: Some(reply.to_owned())
            }
        );
        let done = delta(&before, &count.snapshot());
        [in_progress, done]
    }

    #[tokio::test]
    async fn cost_one_put_item_when_the_server_returns_the_item() {
        let server = MotoServer::shared();
        let only_put = BTreeMap::from([("PutItem".to_owned(), 1)]);
        assert_eq!(
            losing_claims(&server.endpoint()).await,
            [only_put.clone(), only_put]
        );
    }

    #[tokio::test]
    async fn cost_a_get_item_more_when_it_does_not() {
        let server = DynamoServer::start();
        let put_and_get = BTreeMap::from([("GetItem".to_owned(), 1), ("PutItem".to_owned(), 1)]);
        assert_eq!(
            losing_claims(&server.endpoint()).await,
            [put_and_get.clone(), put_and_get]
        );
    }
}

/// The table as template.yaml declares it takes the template's TTL setting (moto has
/// `UpdateTimeToLive`; dynalite does not), and the store works on it.
#[cfg(feature = "external-tests")]
mod template_table {
    use aws_sdk_dynamodb::types::{TimeToLiveSpecification, TimeToLiveStatus};

    use super::support::dynamo::{client, create_table, unique_table_name};
    use super::support::moto::MotoServer;
    use super::{T0, at};
    use wxgate::store::{Claim, DedupStore, DynamoStore, dedup_key};

    /// `TimeToLiveSpecification` of template.yaml's table: (`AttributeName`, `Enabled`).
    fn template_ttl() -> (String, bool) {
        let template = include_str!("../template.yaml");
        let mut spec = template
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "TimeToLiveSpecification:")
            .skip(1)
            .take(2)
            .filter_map(|l| l.split_once(": "));
        let mut field = |name: &str| match spec.next() {
            Some((key, value)) if key == name => value.to_owned(),
            other => {
                panic!("template.yaml TimeToLiveSpecification: {name} expected, got {other:?}")
            }
        };
        let attribute = field("AttributeName");
        let enabled = field("Enabled");
        (attribute, enabled == "true")
    }

    #[tokio::test]
    async fn ttl_on_expires_at_is_accepted() {
        // The store writes its expiry (epoch seconds) to `expires_at`.
        let (attribute, enabled) = template_ttl();
        assert_eq!((attribute.as_str(), enabled), ("expires_at", true));

        let server = MotoServer::shared();
        let client = client(&server.endpoint()).await;
        let table = unique_table_name("template");
        // pk (S), PAY_PER_REQUEST: the template's key schema and billing mode.
        create_table(&client, &table).await;
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(&attribute)
            .enabled(enabled)
            .build()
            .unwrap();
        let updated = client
            .update_time_to_live()
            .table_name(&table)
            .time_to_live_specification(spec.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("UpdateTimeToLive: {:?}", e.into_service_error()));
        assert_eq!(updated.time_to_live_specification(), Some(&spec));
        let described = client
            .describe_time_to_live()
            .table_name(&table)
            .send()
            .await
            .unwrap_or_else(|e| panic!("DescribeTimeToLive: {:?}", e.into_service_error()));
        let description = described.time_to_live_description().unwrap();
        assert_eq!(
            (
                description.time_to_live_status(),
                description.attribute_name()
            ),
            (Some(&TimeToLiveStatus::Enabled), Some(attribute.as_str()))
        );

        let store = DynamoStore::new(client, table);
        let key = dedup_key("demo", "msg|ttl");
        assert_eq!(store.claim(&key, "a", at(T0)).await.unwrap(), Claim::Won);
        assert!(store.complete(&key, "a", None, at(T0)).await.unwrap());
        assert_eq!(
            store.claim(&key, "b", at(T0 + 1)).await.unwrap(),
            Claim::Done { reply: None }
        );
    }
}

const ANSWER_BY: u64 = T0 + 4_000;
/// A decrypted callback as a job carries it: CDATA, quotes and non-ASCII text.
const JOB_MESSAGE: &str = "<xml><ToUserName><![CDATA[wx5823bf96d3bd56c7]]></ToUserName><FromUserName><![CDATA[lisi]]></FromUserName><CreateTime>1800000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[你好 \"<&>\"]]></Content><MsgId>42</MsgId><AgentID>218</AgentID></xml>";

fn job<'a>() -> NewJob<'a> {
    NewJob {
        app: "demo",
        authorizer_app_id: Some("wxauthorizer"),
        message: JOB_MESSAGE,
        answer_by_ms: ANSWER_BY,
    }
}

/// `key` claimed with its job at [`T0`] by callback `cb`.
async fn claimed_job(store: &impl Store, key: &str) {
    assert_eq!(
        store
            .claim_with_job(key, "cb", at(T0), job())
            .await
            .unwrap(),
        Claim::Won
    );
}

/// `key` claimed with its job at [`T0`], and the job taken by worker `w` 100 ms later.
async fn taken_job(store: &impl Store, key: &str) {
    claimed_job(store, key).await;
    assert!(
        store
            .take_job(key, "w", T0 + 100, 60_000)
            .await
            .unwrap()
            .is_some()
    );
}

async fn job_state(store: &impl Store, key: &str, now_ms: u64) -> Option<JobState> {
    store.job(key, now_ms).await.unwrap().map(|j| j.state)
}

async fn a_job_is_taken_once_and_answered_passively_while_the_callback_waits(store: &impl Store) {
    let key = dedup_key("demo", "job|1");
    claimed_job(store, &key).await;
    assert_eq!(
        store.job(&key, T0).await.unwrap(),
        Some(JobRecord {
            state: JobState::Pending,
            app: "demo".into(),
            authorizer_app_id: Some("wxauthorizer".into()),
            message: Some(JOB_MESSAGE.into()),
            answer_by_ms: ANSWER_BY,
            reason: None,
            msgid: None,
        })
    );
    // A stream record delivered twice: one worker gets the job.
    // The job comes back with the take, as stored and now running.
    let taken = store.take_job(&key, "w1", T0 + 100, 60_000).await.unwrap();
    assert_eq!(
        taken,
        Some(JobRecord {
            state: JobState::Running,
            app: "demo".into(),
            authorizer_app_id: Some("wxauthorizer".into()),
            message: Some(JOB_MESSAGE.into()),
            answer_by_ms: ANSWER_BY,
            reason: None,
            msgid: None,
        })
    );
    assert!(
        store
            .take_job(&key, "w2", T0 + 150, 60_000)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        job_state(store, &key, T0 + 150).await,
        Some(JobState::Running)
    );
    assert!(matches!(
        store.dedup_record(&key, T0 + 200).await.unwrap(),
        Some(DedupRecord::InProgress { .. })
    ));
    // Only the holder stores the reply.
    assert!(
        !store
            .answer_job(&key, "w2", Some("<xml>r</xml>"), at(T0 + 300))
            .await
            .unwrap()
    );
    assert!(
        store
            .answer_job(&key, "w1", Some("<xml>r</xml>"), at(T0 + 300))
            .await
            .unwrap()
    );
    assert_eq!(
        store.dedup_record(&key, T0 + 400).await.unwrap(),
        Some(DedupRecord::Done {
            reply: Some("<xml>r</xml>".into())
        })
    );
    // The callback's give-up write comes too late to hide it; retries replay it.
    assert!(
        !store
            .complete(&key, "cb", None, at(T0 + 500))
            .await
            .unwrap()
    );
    assert_eq!(
        store.claim(&key, "retry", at(T0 + 600)).await.unwrap(),
        Claim::Done {
            reply: Some("<xml>r</xml>".into())
        }
    );
    assert_eq!(
        job_state(store, &key, T0 + 600).await,
        Some(JobState::Answered)
    );
    let answered = store.job(&key, T0 + 600).await.unwrap().unwrap();
    assert_eq!(
        answered.message, None,
        "contents are not kept once answered"
    );
    assert!(
        store
            .take_job(&key, "w3", T0 + 120_000, 60_000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.start_sending(&key, "w1").await.unwrap());
}

async fn a_callback_that_stopped_waiting_leaves_the_reply_to_be_sent_once(store: &impl Store) {
    let key = dedup_key("demo", "job|2");
    taken_job(store, &key).await;
    // The callback's budget ends: it answers empty, and so do its retries.
    assert!(
        store
            .complete(&key, "cb", None, at(T0 + 3_900))
            .await
            .unwrap()
    );
    assert_eq!(
        store.claim(&key, "retry", at(T0 + 5_000)).await.unwrap(),
        Claim::Done { reply: None }
    );
    // The worker's reply comes in time by the clock, but nobody waits for it any more.
    assert!(
        !store
            .answer_job(&key, "w", Some("<xml>late</xml>"), at(T0 + 3_950))
            .await
            .unwrap()
    );
    assert!(store.start_sending(&key, "w").await.unwrap());
    assert!(
        !store.start_sending(&key, "w2").await.unwrap(),
        "marked by one worker only"
    );
    assert_eq!(
        job_state(store, &key, T0 + 6_100).await,
        Some(JobState::Sending)
    );
    assert!(
        !store
            .end_job(&key, "other", JobEnd::Sent { msgid: None }, at(T0 + 6_200))
            .await
            .unwrap()
    );
    assert!(
        store
            .end_job(
                &key,
                "w",
                JobEnd::Sent {
                    msgid: Some("msg-7")
                },
                at(T0 + 6_200)
            )
            .await
            .unwrap()
    );
    let ended = store.job(&key, T0 + 6_300).await.unwrap().unwrap();
    assert_eq!(
        (ended.state, ended.msgid.as_deref()),
        (JobState::Sent, Some("msg-7"))
    );
    assert_eq!(ended.message, None, "contents are not kept once sent");
    assert_eq!(
        store.dedup_record(&key, T0 + 6_300).await.unwrap(),
        Some(DedupRecord::Done { reply: None })
    );
    // A redelivery of the stream record finds nothing to do.
    assert!(
        store
            .take_job(&key, "w2", T0 + 200_000, 60_000)
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_reply_after_the_answer_by_time_is_not_stored_for_the_callback(store: &impl Store) {
    let key = dedup_key("demo", "job|3");
    taken_job(store, &key).await;
    // The callback died without giving up; its answer-by time has passed.
    assert!(
        !store
            .answer_job(&key, "w", None, at(ANSWER_BY + 1))
            .await
            .unwrap()
    );
    assert!(store.start_sending(&key, "w").await.unwrap());
    // While sending, a retry of the callback is answered empty.
    assert_eq!(
        store.claim(&key, "retry", at(ANSWER_BY + 3)).await.unwrap(),
        Claim::Done { reply: None }
    );
}

/// An AI bot stream on its job's record: only the worker holding the job writes it; its
/// own retried write is recognised and its late earlier attempt refused; a worker that took
/// the job over after a crash writes from its own first sequence, and the one that lost it
/// no longer can.
async fn a_stream_is_written_by_its_jobs_holder_in_order_and_after_a_takeover(store: &impl Store) {
    let key = dedup_key("demo", "stream|1");
    claimed_job(store, &key).await;
    let write = |writer, seq, content| StreamWrite {
        writer,
        seq,
        content,
        finish: false,
    };
    let put = |w: StreamWrite<'static>, now| {
        let key = key.clone();
        async move { store.put_stream(&key, w, at(now)).await.unwrap() }
    };
    let shown = |now| {
        let key = key.clone();
        async move {
            let stream = store.stream(&key, now).await.unwrap().unwrap();
            (stream.content, stream.seq)
        }
    };
    assert!(
        !put(write("w1", 1, "before the take"), T0).await,
        "no one holds the job yet"
    );
    assert!(
        store
            .take_job(&key, "w1", T0, 5_000)
            .await
            .unwrap()
            .is_some()
    );
    assert!(put(write("w1", 1, ""), T0 + 10).await);
    assert!(put(write("w1", 2, "流式"), T0 + 20).await);
    assert!(
        put(write("w1", 2, "流式"), T0 + 21).await,
        "the same write retried is its own"
    );
    assert!(put(write("w1", 3, "流式回答"), T0 + 30).await);
    assert!(
        !put(write("w1", 2, "流式"), T0 + 40).await,
        "a late attempt of an earlier write"
    );
    assert!(
        !put(write("w2", 9, "not the holder"), T0 + 40).await,
        "another worker while w1 holds the job"
    );
    assert_eq!(shown(T0 + 50).await, ("流式回答".to_owned(), 3));

    // w1 crashed; after its hold w2 takes the job over and starts its own sequence.
    assert!(
        store
            .take_job(&key, "w2", T0 + 5_001, 5_000)
            .await
            .unwrap()
            .is_some()
    );
    assert!(put(write("w2", 1, ""), T0 + 5_010).await);
    assert!(put(write("w2", 2, "重来"), T0 + 5_020).await);
    assert!(
        !put(write("w1", 4, "lost the job"), T0 + 5_030).await,
        "the worker that lost the job"
    );
    assert_eq!(shown(T0 + 5_040).await, ("重来".to_owned(), 2));
}

async fn a_crashed_workers_job_is_taken_over_and_a_failure_is_kept(store: &impl Store) {
    let key = dedup_key("demo", "job|4");
    claimed_job(store, &key).await;
    assert!(
        store
            .take_job(&key, "w1", T0, 5_000)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .take_job(&key, "w2", T0 + 5_000, 5_000)
            .await
            .unwrap()
            .is_none(),
        "w1's last ms"
    );
    assert!(
        store
            .take_job(&key, "w2", T0 + 5_001, 5_000)
            .await
            .unwrap()
            .is_some()
    );
    // The crashed worker's late writes are refused.
    assert!(
        !store
            .answer_job(&key, "w1", None, at(T0 + 5_100))
            .await
            .unwrap()
    );
    assert!(
        !store
            .end_job(&key, "w1", JobEnd::NoReply, at(T0 + 5_100))
            .await
            .unwrap()
    );
    let reason = "upstream: HTTP 500";
    assert!(
        store
            .end_job(&key, "w2", JobEnd::Failed { reason }, at(T0 + 6_000))
            .await
            .unwrap()
    );
    // Kept past the usual retention (an hour here) for inspection.
    let three_days = T0 + 3 * 86_400_000;
    let failed = store.job(&key, three_days).await.unwrap().expect("kept");
    assert_eq!(
        (failed.state, failed.reason.as_deref()),
        (JobState::Failed, Some(reason))
    );
    assert_eq!(
        failed.message.as_deref(),
        Some(JOB_MESSAGE),
        "a failed job keeps it"
    );
    assert_eq!(
        store.dedup_record(&key, three_days).await.unwrap(),
        Some(DedupRecord::Done { reply: None })
    );
    assert!(
        store
            .take_job(&key, "w3", three_days, 5_000)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        store.job(&key, T0 + 8 * 86_400_000).await.unwrap(),
        None,
        "then expires"
    );
}

async fn a_job_record_is_never_taken_over_by_a_claim(store: &impl Store) {
    let key = dedup_key("demo", "job|5");
    claimed_job(store, &key).await;
    // Past the callback's lease, a retry does not claim it again (that would start a
    // second job): it answers empty, and the pending job is still the worker's to take.
    let later = T0 + LEASE_MS + 1;
    assert_eq!(
        store.claim(&key, "retry", at(later)).await.unwrap(),
        Claim::Done { reply: None }
    );
    assert_eq!(
        store
            .claim_with_job(&key, "retry2", at(later), job())
            .await
            .unwrap(),
        Claim::Done { reply: None }
    );
    assert_eq!(
        store.dedup_record(&key, later).await.unwrap(),
        Some(DedupRecord::Done { reply: None })
    );
    assert!(
        !store
            .complete(&key, "retry", None, at(later))
            .await
            .unwrap()
    );
    assert_eq!(job_state(store, &key, later).await, Some(JobState::Pending));
    assert!(
        store
            .take_job(&key, "w", later, 5_000)
            .await
            .unwrap()
            .is_some()
    );
}

/// The AWS SDK retries an attempt whose answer came late; when that attempt's write had
/// landed, the retry finds the item it wrote itself. Every conditional write recognises that
/// as its own and reports it made, and only for the same author in the state it set.
async fn a_write_repeated_by_its_author_is_recognised(store: &impl Store) {
    // A claim, then its completion, each sent twice.
    let key = dedup_key("demo", "again|1");
    assert_eq!(store.claim(&key, "a", at(T0)).await.unwrap(), Claim::Won);
    assert_eq!(
        store.claim(&key, "a", at(T0 + 250)).await.unwrap(),
        Claim::Won
    );
    assert!(matches!(
        store.claim(&key, "b", at(T0 + 260)).await.unwrap(),
        Claim::InProgress { .. }
    ));
    assert!(
        store
            .complete(&key, "a", Some("<xml>r</xml>"), at(T0 + 300))
            .await
            .unwrap()
    );
    assert!(
        store
            .complete(&key, "a", Some("<xml>r</xml>"), at(T0 + 550))
            .await
            .unwrap()
    );
    assert!(!store.complete(&key, "b", None, at(T0 + 560)).await.unwrap());
    // A claim repeated after its own completion is a replay like any other.
    let done = Claim::Done {
        reply: Some("<xml>r</xml>".into()),
    };
    assert_eq!(store.claim(&key, "a", at(T0 + 600)).await.unwrap(), done);
    assert_eq!(store.claim(&key, "c", at(T0 + 600)).await.unwrap(), done);

    // A claim with a job, the take, the passive answer: each twice.
    let key = dedup_key("demo", "again|2");
    claimed_job(store, &key).await;
    assert_eq!(
        store
            .claim_with_job(&key, "cb", at(T0 + 250), job())
            .await
            .unwrap(),
        Claim::Won
    );
    let first = store.take_job(&key, "w", T0 + 100, 60_000).await.unwrap();
    let again = store.take_job(&key, "w", T0 + 350, 60_000).await.unwrap();
    assert_eq!(first.as_ref().map(|j| j.state), Some(JobState::Running));
    assert_eq!(again, first, "the retried take returns the job it took");
    assert!(
        store
            .take_job(&key, "v", T0 + 360, 60_000)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .answer_job(&key, "w", Some("<xml>p</xml>"), at(T0 + 400))
            .await
            .unwrap()
    );
    assert!(
        store
            .answer_job(&key, "w", Some("<xml>p</xml>"), at(T0 + 650))
            .await
            .unwrap()
    );
    assert!(
        !store
            .answer_job(&key, "v", Some("<xml>p</xml>"), at(T0 + 660))
            .await
            .unwrap()
    );

    // A job whose callback gave up: marked sending twice, ended twice.
    let key = dedup_key("demo", "again|3");
    taken_job(store, &key).await;
    assert!(
        store
            .complete(&key, "cb", None, at(T0 + 4_000))
            .await
            .unwrap()
    );
    assert!(
        !store
            .answer_job(&key, "w", Some("<xml>late</xml>"), at(T0 + 4_100))
            .await
            .unwrap()
    );
    assert!(store.start_sending(&key, "w").await.unwrap());
    assert!(store.start_sending(&key, "w").await.unwrap());
    assert!(!store.start_sending(&key, "v").await.unwrap());
    let sent = JobEnd::Sent { msgid: Some("m1") };
    assert!(
        store
            .end_job(&key, "w", sent, at(T0 + 5_000))
            .await
            .unwrap()
    );
    assert!(
        store
            .end_job(&key, "w", sent, at(T0 + 5_250))
            .await
            .unwrap()
    );
    assert!(
        !store
            .end_job(&key, "w", JobEnd::NoReply, at(T0 + 5_260))
            .await
            .unwrap()
    );
    assert_eq!(
        job_state(store, &key, T0 + 5_300).await,
        Some(JobState::Sent)
    );

    // The token refresh lease and the token it fetched, each twice.
    let key = token_key("wecom#corp#again000");
    assert!(store.take_token_lease(&key, "a", T0, 10_000).await.unwrap());
    assert!(
        store
            .take_token_lease(&key, "a", T0 + 250, 10_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .take_token_lease(&key, "b", T0 + 260, 10_000)
            .await
            .unwrap()
    );
    let fetched = token("t-again", T0 + 7_200_000);
    assert!(store.put_token(&key, "a", &fetched).await.unwrap());
    assert!(store.put_token(&key, "a", &fetched).await.unwrap());
    assert!(
        !store
            .put_token(&key, "b", &token("t-other", T0 + 7_200_000))
            .await
            .unwrap()
    );
    assert_eq!(
        store.token(&key, T0 + 300).await.unwrap(),
        TokenRecord {
            token: Some(fetched),
            lease_until_ms: 0
        }
    );
}

/// Plaintext mode: a signature is bound to the body it came with; the same body passes again
/// (a retry), another body does not, until the binding expires.
async fn a_signature_is_bound_to_its_first_body_until_it_expires(store: &impl Store) {
    let key = signature_key("blog", "5C45FF5E21C57E6AD56BAC8758B79B1D9AC89FD3");
    assert_eq!(
        key,
        signature_key("blog", "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3")
    );
    let expires = T0 / 1000 + 660;
    assert!(
        store
            .bind_signature(&key, "body-a", T0, expires)
            .await
            .unwrap()
    );
    assert!(
        store
            .bind_signature(&key, "body-a", T0 + 1_000, expires)
            .await
            .unwrap()
    );
    assert!(
        !store
            .bind_signature(&key, "body-b", T0 + 2_000, expires)
            .await
            .unwrap()
    );
    // Another app's signature is another binding.
    let other = signature_key("shop", "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3");
    assert!(
        store
            .bind_signature(&other, "body-b", T0 + 2_000, expires)
            .await
            .unwrap()
    );
    // Expired: the signature is free again (its timestamp is long outside the replay window).
    let later = (expires + 1) * 1000;
    assert!(
        store
            .bind_signature(&key, "body-b", later, expires + 700)
            .await
            .unwrap()
    );
    assert!(
        !store
            .bind_signature(&key, "body-a", later + 1, expires + 700)
            .await
            .unwrap()
    );
}

// ------------------------------------------------------------------------------------------
// Open Platform records: component verify tickets and authorizations
// ------------------------------------------------------------------------------------------

/// Event times (`CreateTime`) are unix seconds.
const E0: u64 = T0 / 1000;
const COMPONENT: &str = "wxcomponent0001";

fn ticket_of(value: &str, create_time: u64) -> Ticket {
    Ticket {
        value: value.into(),
        create_time,
    }
}

fn grant<'a>(refresh_token: &'a str, func_info: &'a [u32], event_time: u64) -> Grant<'a> {
    Grant {
        refresh_token,
        func_info,
        event_time,
        now_ms: T0 + (event_time - E0) * 1000,
    }
}

async fn authz(store: &impl Store, authorizer: &str) -> AuthorizationRecord {
    store
        .authorization(COMPONENT, authorizer)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no authorization of {authorizer}"))
}

/// Only the fields the state machine is about: state, refresh token, event time, reason.
async fn standing(
    store: &impl Store,
    authorizer: &str,
) -> (AuthorizationState, Option<String>, u64, Option<String>) {
    let r = authz(store, authorizer).await;
    (r.state, r.refresh_token, r.event_time, r.reason)
}

fn some(s: &str) -> Option<String> {
    Some(s.to_owned())
}

/// A pushed ticket is kept until a newer push (by `CreateTime`) replaces it: a retried
/// older push never overwrites it, the same push again is reported stored, and each
/// component has its own.
async fn tickets_newest_wins_per_component(store: &impl Store) {
    let other = "wxcomponent0002";
    assert_eq!(store.ticket(COMPONENT).await.unwrap(), None);
    let first = ticket_of("ticket@@@first-9Gq+/=_-长", E0);
    assert!(store.put_ticket(COMPONENT, &first, T0).await.unwrap());
    assert_eq!(store.ticket(COMPONENT).await.unwrap(), Some(first.clone()));
    // WeChat pushes every 10 minutes; a delivery retried is the same push.
    assert!(store.put_ticket(COMPONENT, &first, T0 + 5).await.unwrap());
    let newer = ticket_of("ticket@@@second", E0 + 600);
    assert!(
        store
            .put_ticket(COMPONENT, &newer, T0 + 600_000)
            .await
            .unwrap()
    );
    // A retry of the older push, delivered late, is refused and the newer one kept.
    assert!(
        !store
            .put_ticket(COMPONENT, &first, T0 + 601_000)
            .await
            .unwrap()
    );
    // Another value with the same CreateTime does not replace it either.
    let same_time = ticket_of("ticket@@@same-time", E0 + 600);
    assert!(
        !store
            .put_ticket(COMPONENT, &same_time, T0 + 602_000)
            .await
            .unwrap()
    );
    assert_eq!(store.ticket(COMPONENT).await.unwrap(), Some(newer.clone()));
    assert!(
        store
            .put_ticket(COMPONENT, &newer, T0 + 603_000)
            .await
            .unwrap()
    );

    // Components are independent: an older ticket is stored for another one.
    assert_eq!(store.ticket(other).await.unwrap(), None);
    let others = ticket_of("ticket@@@other", E0 - 60);
    assert!(
        store
            .put_ticket(other, &others, T0 + 604_000)
            .await
            .unwrap()
    );
    assert_eq!(store.ticket(other).await.unwrap(), Some(others));
    assert_eq!(store.ticket(COMPONENT).await.unwrap(), Some(newer));
    // No authorization is read from a ticket.
    assert!(store.authorizations(COMPONENT).await.unwrap().is_empty());
}

/// A grant is read back as stored; an older grant or revoke (a retried or reordered
/// event) is not applied; one at the same event time is (a retry of the same event); a
/// newer one replaces the token and the permissions.
async fn a_grant_reads_back_and_older_events_are_not_applied(store: &impl Store) {
    let a = "wxauthorizer001";
    assert_eq!(store.authorization(COMPONENT, a).await.unwrap(), None);
    let rt1 = "refreshtoken@@@first_7Ab-c";
    assert!(
        store
            .grant(COMPONENT, a, grant(rt1, &[15, 1, 3, 7], E0 + 100))
            .await
            .unwrap()
    );
    let granted = AuthorizationRecord {
        authorizer_app_id: a.into(),
        state: AuthorizationState::Authorized,
        refresh_token: some(rt1),
        func_info: vec![15, 1, 3, 7],
        event_time: E0 + 100,
        updated_at_ms: T0 + 100_000,
        nick_name: None,
        user_name: None,
        reason: None,
    };
    assert_eq!(authz(store, a).await, granted);

    assert!(
        !store
            .grant(COMPONENT, a, grant("refreshtoken@@@older", &[1], E0 + 99))
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke(COMPONENT, a, E0 + 99, T0 + 200_000)
            .await
            .unwrap()
    );
    assert_eq!(authz(store, a).await, granted, "nothing older applied");

    // The same event again (a retry): applied, the same record.
    assert!(
        store
            .grant(COMPONENT, a, grant(rt1, &[15, 1, 3, 7], E0 + 100))
            .await
            .unwrap()
    );
    assert_eq!(authz(store, a).await, granted);

    // An update of the authorization (`updateauthorized`): new token and permissions.
    let rt2 = "refreshtoken@@@second";
    assert!(
        store
            .grant(COMPONENT, a, grant(rt2, &[2], E0 + 300))
            .await
            .unwrap()
    );
    assert_eq!(
        authz(store, a).await,
        AuthorizationRecord {
            refresh_token: some(rt2),
            func_info: vec![2],
            event_time: E0 + 300,
            updated_at_ms: T0 + 300_000,
            ..granted
        }
    );

    // No permission at all is an empty list, not a list of one unreadable id.
    let b = "wxauthorizer001b";
    assert!(
        store
            .grant(COMPONENT, b, grant("refreshtoken@@@b", &[], E0))
            .await
            .unwrap()
    );
    assert_eq!(authz(store, b).await.func_info, Vec::<u32>::new());
}

/// A revoke keeps the record as a tombstone without its refresh token (the account info
/// and permissions stay); an older grant does not bring it back, a newer one does.
async fn a_revoke_leaves_a_tombstone_that_only_a_newer_grant_lifts(store: &impl Store) {
    let a = "wxauthorizer002";
    let rt1 = "refreshtoken@@@before-revoke";
    assert!(
        store
            .grant(COMPONENT, a, grant(rt1, &[1, 2], E0 + 100))
            .await
            .unwrap()
    );
    assert!(
        store
            .set_account(COMPONENT, a, "小店", "gh_0123456789ab", T0 + 101_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke(COMPONENT, a, E0 + 200, T0 + 200_000)
            .await
            .unwrap()
    );
    let tombstone = AuthorizationRecord {
        authorizer_app_id: a.into(),
        state: AuthorizationState::Revoked,
        refresh_token: None,
        func_info: vec![1, 2],
        event_time: E0 + 200,
        updated_at_ms: T0 + 200_000,
        nick_name: some("小店"),
        user_name: some("gh_0123456789ab"),
        reason: None,
    };
    assert_eq!(authz(store, a).await, tombstone);
    // The same revoke again (a retried event) is applied, and changes nothing.
    assert!(
        store
            .revoke(COMPONENT, a, E0 + 200, T0 + 200_000)
            .await
            .unwrap()
    );
    assert_eq!(authz(store, a).await, tombstone);

    // The `authorized` event retried after the `unauthorized` one: not applied.
    assert!(
        !store
            .grant(COMPONENT, a, grant(rt1, &[1, 2], E0 + 150))
            .await
            .unwrap()
    );
    // Nor do a refresh of the old token or a report of its failure touch the tombstone.
    assert!(
        !store
            .replace_refresh_token(COMPONENT, a, rt1, "refreshtoken@@@x", T0 + 210_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_broken(COMPONENT, a, rt1, "61023", T0 + 211_000)
            .await
            .unwrap()
    );
    assert_eq!(authz(store, a).await, tombstone);

    // Authorized again: a new token, the account info kept.
    let rt3 = "refreshtoken@@@again";
    assert!(
        store
            .grant(COMPONENT, a, grant(rt3, &[3], E0 + 400))
            .await
            .unwrap()
    );
    assert_eq!(
        authz(store, a).await,
        AuthorizationRecord {
            state: AuthorizationState::Authorized,
            refresh_token: some(rt3),
            func_info: vec![3],
            event_time: E0 + 400,
            updated_at_ms: T0 + 400_000,
            ..tombstone
        }
    );

    // A revoke of an account never seen (its grant still to come, or lost) is a tombstone
    // too, and a grant older than it is not applied.
    let b = "wxauthorizer003";
    assert!(
        store
            .revoke(COMPONENT, b, E0 + 500, T0 + 500_000)
            .await
            .unwrap()
    );
    assert_eq!(
        authz(store, b).await,
        AuthorizationRecord {
            authorizer_app_id: b.into(),
            state: AuthorizationState::Revoked,
            refresh_token: None,
            func_info: vec![],
            event_time: E0 + 500,
            updated_at_ms: T0 + 500_000,
            nick_name: None,
            user_name: None,
            reason: None,
        }
    );
    assert!(
        !store
            .grant(COMPONENT, b, grant("refreshtoken@@@b", &[1], E0 + 499))
            .await
            .unwrap()
    );
    assert_eq!(
        standing(store, b).await,
        (AuthorizationState::Revoked, None, E0 + 500, None)
    );
    assert!(
        store
            .grant(COMPONENT, b, grant("refreshtoken@@@b", &[1], E0 + 501))
            .await
            .unwrap()
    );
    assert_eq!(
        standing(store, b).await,
        (
            AuthorizationState::Authorized,
            some("refreshtoken@@@b"),
            E0 + 501,
            None
        )
    );
}

/// The account's nick name and original id go on an existing record only, and later
/// grants keep them.
async fn account_info_goes_on_existing_records_and_grants_keep_it(store: &impl Store) {
    let a = "wxauthorizer004";
    assert!(
        !store
            .set_account(COMPONENT, a, "nick", "gh_aaaaaaaaaaaa", T0)
            .await
            .unwrap()
    );
    assert_eq!(
        store.authorization(COMPONENT, a).await.unwrap(),
        None,
        "no record made"
    );
    assert!(store.authorizations(COMPONENT).await.unwrap().is_empty());

    assert!(
        store
            .grant(COMPONENT, a, grant("refreshtoken@@@a", &[1], E0 + 10))
            .await
            .unwrap()
    );
    assert!(
        store
            .set_account(COMPONENT, a, "nick", "gh_aaaaaaaaaaaa", T0 + 11_000)
            .await
            .unwrap()
    );
    // The same again (a retry), then a renamed account.
    assert!(
        store
            .set_account(COMPONENT, a, "nick", "gh_aaaaaaaaaaaa", T0 + 11_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .set_account(
                COMPONENT,
                a,
                "新名字 \"quoted\" & <x>",
                "gh_aaaaaaaaaaaa",
                T0 + 12_000
            )
            .await
            .unwrap()
    );
    let named = authz(store, a).await;
    assert_eq!(
        (
            named.nick_name.as_deref(),
            named.user_name.as_deref(),
            named.updated_at_ms,
            named.refresh_token.as_deref(),
            named.event_time,
        ),
        (
            Some("新名字 \"quoted\" & <x>"),
            Some("gh_aaaaaaaaaaaa"),
            T0 + 12_000,
            Some("refreshtoken@@@a"),
            E0 + 10,
        ),
        "the grant's fields are untouched"
    );
    assert!(
        store
            .grant(COMPONENT, a, grant("refreshtoken@@@b", &[1, 2], E0 + 20))
            .await
            .unwrap()
    );
    let regranted = authz(store, a).await;
    assert_eq!(
        (regranted.nick_name, regranted.user_name),
        (some("新名字 \"quoted\" & <x>"), some("gh_aaaaaaaaaaaa"))
    );
    assert_eq!(
        store.authorizations(COMPONENT).await.unwrap(),
        vec![authz(store, a).await]
    );
}

/// A refresh token is replaced only from the one stored: a repeat of the same replacement
/// is reported made (its own write), a replacement from a stale token is refused and
/// changes nothing.
async fn a_refresh_token_is_replaced_only_from_the_current_one(store: &impl Store) {
    let a = "wxauthorizer005";
    let (rt1, rt2, rt3) = (
        "refreshtoken@@@one",
        "refreshtoken@@@two",
        "refreshtoken@@@three",
    );
    assert!(
        !store
            .replace_refresh_token(COMPONENT, a, rt1, rt2, T0)
            .await
            .unwrap()
    );
    assert_eq!(
        store.authorization(COMPONENT, a).await.unwrap(),
        None,
        "no record made"
    );

    assert!(
        store
            .grant(COMPONENT, a, grant(rt1, &[1, 5], E0 + 100))
            .await
            .unwrap()
    );
    let granted = authz(store, a).await;
    assert!(
        store
            .replace_refresh_token(COMPONENT, a, rt1, rt2, T0 + 200_000)
            .await
            .unwrap()
    );
    let replaced = AuthorizationRecord {
        refresh_token: some(rt2),
        updated_at_ms: T0 + 200_000,
        ..granted
    };
    assert_eq!(
        authz(store, a).await,
        replaced,
        "only the token and upd change"
    );
    // The same replacement again (a retry): its own write, reported made.
    assert!(
        store
            .replace_refresh_token(COMPONENT, a, rt1, rt2, T0 + 200_000)
            .await
            .unwrap()
    );
    // Another instance refreshing from the token it read before: refused.
    assert!(
        !store
            .replace_refresh_token(COMPONENT, a, rt1, rt3, T0 + 201_000)
            .await
            .unwrap()
    );
    assert_eq!(authz(store, a).await, replaced, "the newest token is kept");
    // From the current one: replaced.
    assert!(
        store
            .replace_refresh_token(COMPONENT, a, rt2, rt3, T0 + 202_000)
            .await
            .unwrap()
    );
    assert_eq!(
        standing(store, a).await,
        (AuthorizationState::Authorized, some(rt3), E0 + 100, None)
    );
    // After a revoke, even the current token's holder cannot put one back.
    assert!(
        store
            .revoke(COMPONENT, a, E0 + 300, T0 + 300_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_refresh_token(COMPONENT, a, rt3, "refreshtoken@@@four", T0 + 301_000)
            .await
            .unwrap()
    );
    assert_eq!(
        standing(store, a).await,
        (AuthorizationState::Revoked, None, E0 + 300, None)
    );
}

/// An authorization is marked broken only while its token is the one that failed (a newer
/// one is never marked); a broken one keeps that token, and recovers with a replacement
/// from it or a newer grant.
async fn a_broken_authorization_is_marked_only_from_its_token_and_recovers(store: &impl Store) {
    let a = "wxauthorizer006";
    let (rt1, rt2, rt3) = (
        "refreshtoken@@@one",
        "refreshtoken@@@two",
        "refreshtoken@@@three",
    );
    assert!(
        !store
            .mark_broken(COMPONENT, a, rt1, "61023", T0)
            .await
            .unwrap()
    );
    assert_eq!(store.authorization(COMPONENT, a).await.unwrap(), None);
    assert!(
        store
            .grant(COMPONENT, a, grant(rt1, &[1], E0 + 100))
            .await
            .unwrap()
    );
    assert!(
        store
            .replace_refresh_token(COMPONENT, a, rt1, rt2, T0 + 150_000)
            .await
            .unwrap()
    );
    // A late failure report for the token replaced meanwhile: the newer one stands.
    assert!(
        !store
            .mark_broken(
                COMPONENT,
                a,
                rt1,
                "61023 invalid refresh token",
                T0 + 160_000
            )
            .await
            .unwrap()
    );
    assert_eq!(
        standing(store, a).await,
        (AuthorizationState::Authorized, some(rt2), E0 + 100, None)
    );

    let why = "61023: invalid authorizer_refresh_token";
    assert!(
        store
            .mark_broken(COMPONENT, a, rt2, why, T0 + 170_000)
            .await
            .unwrap()
    );
    let broken = authz(store, a).await;
    assert_eq!(
        (
            broken.state,
            broken.refresh_token.as_deref(),
            broken.reason.as_deref(),
            broken.updated_at_ms,
            broken.event_time,
        ),
        (
            AuthorizationState::Broken,
            Some(rt2),
            Some(why),
            T0 + 170_000,
            E0 + 100
        )
    );
    // The same mark again (a retry): made.
    assert!(
        store
            .mark_broken(COMPONENT, a, rt2, why, T0 + 170_000)
            .await
            .unwrap()
    );
    assert_eq!(authz(store, a).await, broken);
    // A replacement from a stale token does not lift it; one from the broken token does.
    assert!(
        !store
            .replace_refresh_token(COMPONENT, a, rt1, rt3, T0 + 180_000)
            .await
            .unwrap()
    );
    assert_eq!(authz(store, a).await, broken);
    assert!(
        store
            .replace_refresh_token(COMPONENT, a, rt2, rt3, T0 + 190_000)
            .await
            .unwrap()
    );
    assert_eq!(
        standing(store, a).await,
        (AuthorizationState::Authorized, some(rt3), E0 + 100, None)
    );

    // Broken again, then authorized anew by a newer grant: no reason left.
    assert!(
        store
            .mark_broken(COMPONENT, a, rt3, why, T0 + 200_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .grant(COMPONENT, a, grant("refreshtoken@@@old", &[1], E0 + 99))
            .await
            .unwrap()
    );
    assert_eq!(
        standing(store, a).await,
        (AuthorizationState::Broken, some(rt3), E0 + 100, some(why))
    );
    assert!(
        store
            .grant(COMPONENT, a, grant("refreshtoken@@@four", &[1], E0 + 300))
            .await
            .unwrap()
    );
    assert_eq!(
        standing(store, a).await,
        (
            AuthorizationState::Authorized,
            some("refreshtoken@@@four"),
            E0 + 300,
            None
        )
    );
    // Broken, then revoked: a tombstone without the reason or the token.
    assert!(
        store
            .mark_broken(COMPONENT, a, "refreshtoken@@@four", why, T0 + 310_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke(COMPONENT, a, E0 + 320, T0 + 320_000)
            .await
            .unwrap()
    );
    assert_eq!(
        standing(store, a).await,
        (AuthorizationState::Revoked, None, E0 + 320, None)
    );
    assert!(
        !store
            .mark_broken(COMPONENT, a, "refreshtoken@@@four", why, T0 + 330_000)
            .await
            .unwrap()
    );
}

/// The listing of a component: its authorizations only (not another component's whose
/// AppID starts the same, nor its ticket), by authorizer AppID, tombstones included.
async fn authorizations_list_one_component_sorted_with_tombstones(store: &impl Store) {
    let (longer, shorter) = ("wxcomponent00010", "wxcomponent000");
    for (component, authorizer, t) in [
        (COMPONENT, "wxc_zulu", 1),
        (COMPONENT, "wxa_alpha", 2),
        (longer, "wxb_other", 3),
        (shorter, "wxb_short", 4),
        (COMPONENT, "wxm_mike", 5),
    ] {
        let token = format!("refreshtoken@@@{authorizer}");
        assert!(
            store
                .grant(component, authorizer, grant(&token, &[1], E0 + t))
                .await
                .unwrap()
        );
    }
    assert!(
        store
            .revoke(COMPONENT, "wxm_mike", E0 + 10, T0 + 10_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .revoke(COMPONENT, "wxb_never", E0 + 11, T0 + 11_000)
            .await
            .unwrap()
    );
    assert!(
        store
            .put_ticket(COMPONENT, &ticket_of("ticket@@@x", E0), T0)
            .await
            .unwrap()
    );
    let listed = store.authorizations(COMPONENT).await.unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|r| (r.authorizer_app_id.as_str(), r.state))
        .collect();
    assert_eq!(
        summary,
        [
            ("wxa_alpha", AuthorizationState::Authorized),
            ("wxb_never", AuthorizationState::Revoked),
            ("wxc_zulu", AuthorizationState::Authorized),
            ("wxm_mike", AuthorizationState::Revoked),
        ]
    );
    // Each as read one by one.
    for record in &listed {
        assert_eq!(record, &authz(store, &record.authorizer_app_id).await);
    }
    let ids = |records: Vec<AuthorizationRecord>| {
        records
            .into_iter()
            .map(|r| r.authorizer_app_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.authorizations(longer).await.unwrap()),
        ["wxb_other"]
    );
    assert_eq!(
        ids(store.authorizations(shorter).await.unwrap()),
        ["wxb_short"]
    );
    assert!(
        store
            .authorizations("wxcomponent9999")
            .await
            .unwrap()
            .is_empty()
    );
}

/// Instances refreshing the same authorization at once, each from the token they all
/// read: exactly one replacement is made and its token is the one stored (no newer refresh
/// token is ever overwritten and lost); a failure report for the replaced token, racing
/// them, never breaks the new one.
async fn concurrent_refresh_token_replacements_have_one_winner(store: &impl Store) {
    let a = "wxauthorizer007";
    let previous = "refreshtoken@@@shared";
    assert!(
        store
            .grant(COMPONENT, a, grant(previous, &[1], E0 + 100))
            .await
            .unwrap()
    );
    let news: Vec<String> = (0..8).map(|i| format!("refreshtoken@@@new-{i}")).collect();
    let replacing = futures::future::join_all(
        news.iter()
            .map(|new| store.replace_refresh_token(COMPONENT, a, previous, new, T0 + 200_000)),
    );
    let breaking = futures::future::join_all(
        (0..4).map(|_| store.mark_broken(COMPONENT, a, previous, "61023", T0 + 200_000)),
    );
    let (replaced, _broken) = futures::join!(replacing, breaking);
    let winners: Vec<&String> = news
        .iter()
        .zip(&replaced)
        .filter(|(_, r)| *r.as_ref().unwrap())
        .map(|(new, _)| new)
        .collect();
    assert_eq!(winners.len(), 1, "{replaced:?}");
    assert_eq!(
        standing(store, a).await,
        (
            AuthorizationState::Authorized,
            Some(winners[0].clone()),
            E0 + 100,
            None
        )
    );
    // Each loser, trying again, is still refused; the winner's repeat is its own write.
    for (new, r) in news.iter().zip(&replaced) {
        let again = store
            .replace_refresh_token(COMPONENT, a, previous, new, T0 + 201_000)
            .await
            .unwrap();
        assert_eq!(again, *r.as_ref().unwrap(), "{new}");
    }
    assert_eq!(
        authz(store, a).await.refresh_token.as_ref(),
        Some(winners[0])
    );
}

/// Authorization events delivered at once and out of order: the record is the one of the
/// latest event, whatever order they land in.
async fn concurrent_grants_keep_the_latest_event(store: &impl Store) {
    let a = "wxauthorizer008";
    let times = [103, 107, 100, 105, 101, 108, 102, 104];
    let tokens: Vec<String> = times
        .iter()
        .map(|t| format!("refreshtoken@@@evt-{t}"))
        .collect();
    let funcs: Vec<Vec<u32>> = times.iter().map(|t| vec![*t as u32, 1]).collect();
    let granting = futures::future::join_all(
        times
            .iter()
            .enumerate()
            .map(|(i, t)| store.grant(COMPONENT, a, grant(&tokens[i], &funcs[i], E0 + t))),
    );
    // An `unauthorized` event in between (older than the latest grant).
    let revoking = store.revoke(COMPONENT, a, E0 + 106, T0 + 106_000);
    let (granted, revoked) = futures::join!(granting, revoking);
    let latest = times.iter().position(|t| *t == 108).unwrap();
    assert!(
        *granted[latest].as_ref().unwrap(),
        "the latest grant is applied"
    );
    revoked.unwrap();
    assert_eq!(
        authz(store, a).await,
        AuthorizationRecord {
            authorizer_app_id: a.into(),
            state: AuthorizationState::Authorized,
            refresh_token: some("refreshtoken@@@evt-108"),
            func_info: vec![108, 1],
            event_time: E0 + 108,
            updated_at_ms: T0 + 108_000,
            nick_name: None,
            user_name: None,
            reason: None,
        }
    );
}
