//! Open Platform writes whose DynamoDB answer comes late: the write lands, its answer comes
//! after the SDK's attempt timeout, and the SDK retries a write that already took effect.
//! The retry of a conditional write then finds the item it wrote itself; that must be taken
//! as this write made, not as a conflict (a refresh token reported "replaced by another
//! instance" is thrown away by its caller, and the account must authorize again).
//!
//! The store runs with two attempts per request, as in production, of 1 s each, and
//! sealing keys, behind a proxy that holds back exactly the chosen answer
//! (`support::late_answer`), over dynalite (which never returns the item with a failed
//! condition, so the store reads it back) and moto (which does). The outcome is read
//! through a second client of the same table, not through the proxy.
// Needs Node, Python, Chromium or a local AWS-compatible server: built only with
// `--features external-tests` (scripts/test.sh), so plain `cargo test` stays offline.
#![cfg(feature = "external-tests")]

mod support;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use support::dynamo::{
    DynamoServer, client, config as client_config, create_table, unique_table_name,
};
use support::late_answer::{LateAnswerProxy, LateRule};
use support::moto::MotoServer;
use wxgate::crypto::at_rest::AtRestKey;
use wxgate::store::dynamodb::{DynamoTimeouts, with_timeouts};
use wxgate::store::sealing::Sealing;
use wxgate::store::{AuthorizationState, DynamoStore, Grant, OpenStore, Ticket};

/// The SDK's attempt timeout here. Production uses 250 ms; a second keeps the retry that
/// follows the held-back answer inside its attempt when a Node or Python server is slow to
/// answer on a loaded machine, while the logic under test is the same.
const ATTEMPT: Duration = Duration::from_secs(1);
/// Past the attempt timeout: the SDK gives up on the attempt and retries.
const LATE: Duration = Duration::from_millis(2500);
const T0: u64 = 1_800_000_000_000;
const E0: u64 = T0 / 1000;
const COMPONENT: &str = "wxcomponentlate";
const AUTHORIZER: &str = "wxauthorizerlate";
const RT1: &str = "refreshtoken@@@first-Zq8";
const RT2: &str = "refreshtoken@@@second-Kp3";

/// Which server the table is on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Server {
    Dynalite,
    Moto,
}

struct Rig {
    server: Server,
    _dynalite: Option<DynamoServer>,
    proxy: LateAnswerProxy,
    /// Through the proxy.
    store: DynamoStore,
    /// The same table, not through the proxy: what the test reads the outcome with.
    direct: DynamoStore,
    db: aws_sdk_dynamodb::Client,
    table: String,
}

async fn rig(server: Server) -> Rig {
    let (dynalite, addr, endpoint) = match server {
        Server::Dynalite => {
            let s = DynamoServer::start();
            let (addr, endpoint) = (s.addr(), s.endpoint());
            (Some(s), addr, endpoint)
        }
        Server::Moto => {
            let s = MotoServer::shared();
            (None, s.addr(), s.endpoint())
        }
    };
    let table = unique_table_name("open-late");
    let db = client(&endpoint).await;
    create_table(&db, &table).await;
    let proxy = LateAnswerProxy::start(addr);
    let timeouts = DynamoTimeouts::per_attempt(ATTEMPT);
    let conf = with_timeouts(client_config(&proxy.endpoint()), timeouts);
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::from_conf(conf), &table);
    let mut sealing = Sealing::new();
    sealing.add_component(
        COMPONENT,
        vec![AtRestKey::derive(
            b"component-secret-for-late-answers",
            "component",
        )],
    );
    assert!(store.install_sealing(sealing));
    let direct = DynamoStore::new(db.clone(), &table).sharing_keys_with(&store);
    Rig {
        server,
        _dynalite: dynalite,
        proxy,
        store,
        direct,
        db,
        table,
    }
}

impl Rig {
    /// Holds back the answer of the next `UpdateItem` whose request contains `text`.
    fn answer_late(&self, text: &str) {
        self.proxy
            .answer_late(LateRule::next("UpdateItem", LATE).containing(text));
    }

    /// The late answer was held back and the SDK sent the write again.
    fn assert_retried(&self) {
        assert_eq!(self.proxy.late_answers(), 1, "{:?}", self.proxy.seen());
        assert_eq!(self.proxy.armed(), 0);
        assert_eq!(
            self.proxy.count("UpdateItem"),
            2,
            "the SDK retried the write: {:?}",
            self.proxy.seen()
        );
    }

    /// The retry failed its condition against the item the first attempt wrote: dynalite
    /// does not return that item with the failure, so the store read it (one `GetItem`).
    fn assert_condition_failed_on_retry(&self) {
        let reads = match self.server {
            Server::Dynalite => 1,
            Server::Moto => 0,
        };
        assert_eq!(
            self.proxy.count("GetItem"),
            reads,
            "{:?}",
            self.proxy.seen()
        );
    }

    async fn grant_directly(&self, refresh_token: &str, event_time: u64) {
        assert!(
            self.direct
                .grant(COMPONENT, AUTHORIZER, grant(refresh_token, event_time, T0))
                .await
                .unwrap()
        );
    }

    async fn standing(&self) -> (AuthorizationState, Option<String>, u64, Option<String>) {
        let r = self
            .direct
            .authorization(COMPONENT, AUTHORIZER)
            .await
            .unwrap()
            .expect("an authorization");
        (r.state, r.refresh_token, r.event_time, r.reason)
    }

    /// Every string value of every item of the table, raw.
    async fn raw_strings(&self) -> Vec<String> {
        let page = self.db.scan().table_name(&self.table).send().await.unwrap();
        page.items
            .unwrap_or_default()
            .into_iter()
            .flat_map(|item| item.into_values())
            .filter_map(|v| match v {
                AttributeValue::S(s) => Some(s),
                _ => None,
            })
            .collect()
    }
}

fn grant(refresh_token: &str, event_time: u64, now_ms: u64) -> Grant<'_> {
    Grant {
        refresh_token,
        func_info: &[1, 15],
        event_time,
        now_ms,
    }
}

/// The refresh token replaced after a refresh: the retry finds its own new token.
async fn a_refresh_token_replacement_answered_late_is_reported_made(server: Server) {
    let rig = rig(server).await;
    rig.grant_directly(RT1, E0).await;
    rig.answer_late("rt_fp = :new");
    let replaced = rig
        .store
        .replace_refresh_token(COMPONENT, AUTHORIZER, RT1, RT2, T0 + 1_000)
        .await;
    rig.assert_retried();
    rig.assert_condition_failed_on_retry();
    assert!(
        replaced.unwrap(),
        "its own replacement taken for another instance's"
    );
    assert_eq!(
        rig.standing().await,
        (AuthorizationState::Authorized, Some(RT2.into()), E0, None)
    );
    // Another instance's replacement from the old token is still refused.
    assert!(
        !rig.store
            .replace_refresh_token(COMPONENT, AUTHORIZER, RT1, "refreshtoken@@@x", T0 + 2_000)
            .await
            .unwrap()
    );
    assert_eq!(rig.standing().await.1.as_deref(), Some(RT2));
    // Nothing of it is in the table in clear.
    let raw = rig.raw_strings().await;
    assert!(
        !raw.iter().any(|s| s.contains("refreshtoken@@@")),
        "{raw:?}"
    );
}

/// Both attempts of the replacement answered late: the call fails, though the write
/// landed; the caller's repeat of the same replacement recognises it.
async fn a_refresh_token_replacement_that_failed_but_landed_is_recognised_on_repeat(
    server: Server,
) {
    let rig = rig(server).await;
    rig.grant_directly(RT1, E0).await;
    rig.proxy.answer_late(LateRule {
        times: 2,
        ..LateRule::next("UpdateItem", LATE).containing("rt_fp = :new")
    });
    let failed = rig
        .store
        .replace_refresh_token(COMPONENT, AUTHORIZER, RT1, RT2, T0 + 1_000)
        .await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(rig.proxy.late_answers(), 2);
    assert_eq!(rig.standing().await.1.as_deref(), Some(RT2), "it landed");
    assert!(
        rig.store
            .replace_refresh_token(COMPONENT, AUTHORIZER, RT1, RT2, T0 + 1_000)
            .await
            .unwrap()
    );
    assert_eq!(
        rig.standing().await,
        (AuthorizationState::Authorized, Some(RT2.into()), E0, None)
    );
}

/// An authorization stored from `api_query_auth`.
async fn a_grant_answered_late_is_reported_applied(server: Server) {
    let rig = rig(server).await;
    rig.answer_late("SET aid = :aid, ast = :a, rt = :rt");
    let granted = rig
        .store
        .grant(COMPONENT, AUTHORIZER, grant(RT1, E0 + 5, T0 + 5_000))
        .await;
    rig.assert_retried();
    assert!(granted.unwrap());
    let record = rig
        .direct
        .authorization(COMPONENT, AUTHORIZER)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            record.state,
            record.refresh_token.as_deref(),
            record.func_info.as_slice(),
            record.event_time,
            record.updated_at_ms,
        ),
        (
            AuthorizationState::Authorized,
            Some(RT1),
            &[1, 15][..],
            E0 + 5,
            T0 + 5_000
        )
    );
}

/// An `unauthorized` event stored over an authorization.
async fn a_revoke_answered_late_is_reported_applied(server: Server) {
    let rig = rig(server).await;
    rig.grant_directly(RT1, E0).await;
    rig.answer_late("ast = :r, evt = :e");
    let revoked = rig
        .store
        .revoke(COMPONENT, AUTHORIZER, E0 + 10, T0 + 10_000)
        .await;
    rig.assert_retried();
    assert!(revoked.unwrap());
    assert_eq!(
        rig.standing().await,
        (AuthorizationState::Revoked, None, E0 + 10, None)
    );
}

/// A pushed `component_verify_ticket`: the retry finds the same push stored.
async fn a_ticket_push_answered_late_is_reported_stored(server: Server) {
    let rig = rig(server).await;
    let older = Ticket {
        value: "ticket@@@older".into(),
        create_time: E0 - 600,
    };
    assert!(rig.direct.put_ticket(COMPONENT, &older, T0).await.unwrap());
    let pushed = Ticket {
        value: "ticket@@@pushed-Yx1".into(),
        create_time: E0,
    };
    rig.answer_late("SET tkt = :t");
    let stored = rig.store.put_ticket(COMPONENT, &pushed, T0 + 1_000).await;
    rig.assert_retried();
    rig.assert_condition_failed_on_retry();
    assert!(stored.unwrap(), "its own push taken for a newer one");
    assert_eq!(rig.direct.ticket(COMPONENT).await.unwrap(), Some(pushed));
    // The older push retried is still refused.
    assert!(
        !rig.store
            .put_ticket(COMPONENT, &older, T0 + 2_000)
            .await
            .unwrap()
    );
    let raw = rig.raw_strings().await;
    assert!(!raw.iter().any(|s| s.contains("ticket@@@")), "{raw:?}");
}

/// A refresh token reported broken (61023).
async fn a_broken_mark_answered_late_is_reported_made(server: Server) {
    let rig = rig(server).await;
    rig.grant_directly(RT1, E0).await;
    rig.answer_late("SET ast = :b");
    let why = "61023 invalid authorizer_refresh_token";
    let marked = rig
        .store
        .mark_broken(COMPONENT, AUTHORIZER, RT1, why, T0 + 1_000)
        .await;
    rig.assert_retried();
    assert!(marked.unwrap());
    assert_eq!(
        rig.standing().await,
        (
            AuthorizationState::Broken,
            Some(RT1.into()),
            E0,
            Some(why.into())
        )
    );
}

/// The account's names recorded after `api_get_authorizer_info`.
async fn account_info_answered_late_is_reported_set(server: Server) {
    let rig = rig(server).await;
    rig.grant_directly(RT1, E0).await;
    rig.answer_late("SET nick = :nick");
    let set = rig
        .store
        .set_account(COMPONENT, AUTHORIZER, "小店", "gh_0123456789ab", T0 + 1_000)
        .await;
    rig.assert_retried();
    assert!(set.unwrap());
    let record = rig
        .direct
        .authorization(COMPONENT, AUTHORIZER)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.nick_name.as_deref(), record.user_name.as_deref()),
        (Some("小店"), Some("gh_0123456789ab"))
    );
}

/// Declares each case twice: `dynalite::name` and `moto::name`.
macro_rules! on_both_servers {
    ($($name:ident),* $(,)?) => {
        mod dynalite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Server::Dynalite).await;
                }
            )*
        }
        mod moto {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Server::Moto).await;
                }
            )*
        }
    };
}

on_both_servers!(
    a_refresh_token_replacement_answered_late_is_reported_made,
    a_refresh_token_replacement_that_failed_but_landed_is_recognised_on_repeat,
    a_grant_answered_late_is_reported_applied,
    a_revoke_answered_late_is_reported_applied,
    a_ticket_push_answered_late_is_reported_stored,
    a_broken_mark_answered_late_is_reported_made,
    account_info_answered_late_is_reported_set,
);
